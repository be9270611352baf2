//! The Vault client under every API of this crate: one HTTP client per server, the login
//! ([`VaultAuth`]), the token's lease (renewal, or a new login when it cannot be renewed),
//! and retries with jittered exponential backoff. The KV v2 store ([`crate::VaultSecretStore`])
//! and the database provisioner ([`crate::VaultDbProvisioner`]) send their calls through it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustify::errors::ClientError as RustifyError;
use secrecy::{ExposeSecret, SecretString};
use vaultrs::api::AuthInfo;
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::config::{VaultAuth, VaultConfig};
use crate::error::{Error, Result};

/// An API call as an operation on an owned client (the current one, which a new login may
/// replace): `op!(|c| vaultrs::kv2::read(c, mount, path))`. Every variable the call uses must
/// be `Copy` (references), since the operation may run more than once.
macro_rules! op {
    (|$c:ident| $call:expr) => {
        move |$c: std::sync::Arc<vaultrs::client::VaultClient>| async move {
            let $c = &*$c;
            $call.await
        }
    };
}
pub(crate) use op;

/// Which requests may be sent again after a connection error: a write whose request may have
/// reached the server is not repeated (it would write another version).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotent {
    Yes,
    No,
}

/// A logged-in connection to one Vault or OpenBao server. Cloning is cheap and shares the
/// HTTP client (and its connections), the token and its lease.
#[derive(Clone)]
pub(crate) struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// The client with the current token. A new login or renewal swaps in a client with the
    /// new token that shares the same HTTP client (and connections).
    client: RwLock<Arc<VaultClient>>,
    address: String,
    retries: u32,
    backoff: Duration,
    timeout: Duration,
    /// How to log in again (never shown).
    auth: VaultAuth,
    lease: Mutex<Lease>,
    /// Serialises renewals and logins, so that concurrent requests do not all renew.
    refresh: tokio::sync::Mutex<()>,
    /// Counts logins, so that a request denied with an old token does not log in again after
    /// another request already did.
    generation: AtomicU64,
}

/// What is known about the current token's lifetime.
#[derive(Clone, Copy, Debug)]
struct Lease {
    /// When the token expires; `None` when it does not (root tokens) or nothing more can be
    /// done about it before it does.
    expires: Option<Instant>,
    /// Its full TTL: renewal is due when less than a third of it is left.
    ttl: Duration,
    /// Whether `auth/token/renew-self` can extend it.
    renewable: bool,
}

impl Lease {
    const NONE: Lease = Lease { expires: None, ttl: Duration::ZERO, renewable: false };

    fn new(ttl_secs: u64, renewable: bool) -> Lease {
        if ttl_secs == 0 {
            return Lease::NONE;
        }
        let ttl = Duration::from_secs(ttl_secs);
        Lease { expires: Some(Instant::now() + ttl), ttl, renewable }
    }

    fn due(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| e.saturating_duration_since(now) < self.ttl / 3)
    }
}

impl Client {
    /// A client authenticating with the token of `config`, without talking to the server yet
    /// (so without renewal: the token's TTL is unknown; [`Client::connect`] looks it up).
    ///
    /// Fails on a bad address or CA file, or when `config` uses AppRole or Kubernetes auth
    /// (which log in: use [`Client::connect`]).
    pub(crate) fn new(config: &VaultConfig) -> Result<Self> {
        let token = match &config.auth {
            VaultAuth::Token(t) => t.clone(),
            _ => {
                return Err(Error::Config {
                    message: "this auth method needs a login".into(),
                    hint: "use VaultSecretStore::connect, which logs in".into(),
                });
            }
        };
        Self::build(config, token.expose_secret())
    }

    /// A client that has logged in (AppRole, Kubernetes) or looked its token up: a wrong
    /// address, a sealed server or a bad token fail here, with a hint.
    ///
    /// The token's TTL is remembered: before each request a renewable token is renewed when
    /// less than a third of its TTL is left; a token that cannot be renewed (any more) is
    /// replaced by a new login when the auth method allows it (AppRole, Kubernetes). A request
    /// denied because the token expired or was revoked logs in again and is sent once more
    /// (AppRole, Kubernetes), or fails with [`Error::TokenExpired`] (a plain token).
    pub(crate) async fn connect(config: &VaultConfig) -> Result<Self> {
        match &config.auth {
            VaultAuth::Token(token) => {
                let this = Self::build(config, token.expose_secret())?;
                let client = this.current();
                let looked_up = this
                    .call_on(
                        &client,
                        "auth/token/lookup-self",
                        Idempotent::Yes,
                        &op!(|c| vaultrs::token::lookup_self(c)),
                    )
                    .await;
                let info = match looked_up {
                    Ok(info) => info,
                    // A token without the `default` policy may not look itself up: valid all
                    // the same when the server still accepts it (its TTL is then unknown).
                    Err(Error::PermissionDenied { address, what }) => {
                        if this.token_valid(&client).await != Some(true) {
                            return Err(Error::TokenExpired { address, what });
                        }
                        tracing::debug!(address = %address, "the token may not look itself up: its TTL is unknown and it is not renewed");
                        return Ok(this);
                    }
                    Err(e) => return Err(e),
                };
                // `ttl` is what is left; renewal asks for the TTL the token was created with.
                let mut lease = Lease::new(info.ttl, info.renewable.unwrap_or(false));
                lease.ttl = lease.ttl.max(Duration::from_secs(info.creation_ttl));
                tracing::debug!(address = %this.inner.address, ttl_s = info.ttl, renewable = lease.renewable, "looked the token up");
                *this.inner.lease.lock().expect("lease lock") = lease;
                Ok(this)
            }
            _ => {
                let this = Self::build(config, "")?;
                this.login().await?;
                Ok(this)
            }
        }
    }

    /// Whether the server still accepts the token of `client` (`None`: no clear answer).
    /// `sys/internal/ui/mounts` needs no token and no policy, but checks a token that is sent:
    /// it answers every valid token, whatever its policies, and refuses an expired, revoked or
    /// unknown one.
    async fn token_valid(&self, client: &Arc<VaultClient>) -> Option<bool> {
        let probe = self
            .call_on(
                client,
                "sys/internal/ui/mounts",
                Idempotent::Yes,
                &op!(|c| vaultrs::api::exec_with_result(c, UiMounts)),
            )
            .await;
        match probe {
            Ok(_) => Some(true),
            Err(Error::PermissionDenied { .. }) => Some(false),
            Err(_) => None,
        }
    }

    /// The client with the current token.
    fn current(&self) -> Arc<VaultClient> {
        self.inner.client.read().expect("client lock").clone()
    }

    /// A client with `token` on the same HTTP client (connections are shared).
    fn client_with_token(&self, token: &str) -> VaultClient {
        let current = self.current();
        let mut client = VaultClient {
            http: rustify::clients::reqwest::Client {
                http: current.http.http.clone(),
                base: current.http.base.clone(),
            },
            middle: current.middle.clone(),
            settings: current.settings.clone(),
        };
        client.set_token(token);
        client
    }

    /// Logs in with the configured method and installs the new token. Callers hold the
    /// refresh lock (or own the client alone).
    async fn login(&self) -> Result<()> {
        let anonymous = Arc::new(self.client_with_token(""));
        let auth: AuthInfo = match &self.inner.auth {
            VaultAuth::Token(_) => {
                return Err(Error::Config {
                    message: "a token cannot log in again".into(),
                    hint: "use AppRole or Kubernetes auth for logins".into(),
                });
            }
            VaultAuth::AppRole { mount, role_id, secret_id } => {
                let what = format!("auth/{mount}/login");
                let (mount, role_id, secret_id) = (mount.as_str(), role_id.as_str(), secret_id.expose_secret());
                self.call_on(
                    &anonymous,
                    &what,
                    Idempotent::Yes,
                    &op!(|c| vaultrs::auth::approle::login(c, mount, role_id, secret_id)),
                )
                .await?
            }
            VaultAuth::Kubernetes { mount, role, jwt_path } => {
                let what = format!("auth/{mount}/login");
                let jwt = read_jwt(jwt_path)?;
                let (mount, role, jwt) = (mount.as_str(), role.as_str(), jwt.expose_secret());
                self.call_on(
                    &anonymous,
                    &what,
                    Idempotent::Yes,
                    &op!(|c| vaultrs::auth::kubernetes::login(c, mount, role, jwt)),
                )
                .await?
            }
        };
        let token = SecretString::from(auth.client_token);
        let client = self.client_with_token(token.expose_secret());
        *self.inner.client.write().expect("client lock") = Arc::new(client);
        *self.inner.lease.lock().expect("lease lock") = Lease::new(auth.lease_duration, auth.renewable);
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(
            address = %self.inner.address,
            method = self.inner.auth.method(),
            ttl_s = auth.lease_duration,
            renewable = auth.renewable,
            "logged in"
        );
        Ok(())
    }

    /// Renews the token, or logs in again, when less than a third of its TTL is left. Cheap
    /// when nothing is due: one uncontended lock and a clock read.
    async fn refresh_if_due(&self) -> Result<()> {
        let due = || self.inner.lease.lock().expect("lease lock").due(Instant::now());
        if !due() {
            return Ok(());
        }
        let _refreshing = self.inner.refresh.lock().await;
        if !due() {
            return Ok(());
        }
        let lease = *self.inner.lease.lock().expect("lease lock");
        if lease.renewable {
            let client = self.current();
            let increment = format!("{}s", lease.ttl.as_secs());
            let increment = increment.as_str();
            let renewed = self
                .call_on(
                    &client,
                    "auth/token/renew-self",
                    Idempotent::Yes,
                    &op!(|c| vaultrs::token::renew_self(c, Some(increment))),
                )
                .await;
            match renewed {
                Ok(auth) => {
                    let mut renewed = Lease::new(auth.lease_duration, auth.renewable);
                    renewed.ttl = lease.ttl;
                    // Less than asked for: the token reached its max TTL, renewing again
                    // will not help.
                    if auth.lease_duration < lease.ttl.as_secs() {
                        renewed.renewable = false;
                    }
                    tracing::debug!(
                        address = %self.inner.address,
                        ttl_s = auth.lease_duration,
                        renewable = renewed.renewable,
                        "renewed the token"
                    );
                    *self.inner.lease.lock().expect("lease lock") = renewed;
                    if !renewed.due(Instant::now()) {
                        return Ok(());
                    }
                }
                Err(e) if self.inner.auth.can_login() => {
                    tracing::debug!(address = %self.inner.address, error = %e, "token renewal failed; logging in again");
                }
                Err(Error::PermissionDenied { address, what }) => return Err(Error::TokenExpired { address, what }),
                Err(e) => return Err(e),
            }
        }
        if self.inner.auth.can_login() {
            return self.login().await;
        }
        let lease = *self.inner.lease.lock().expect("lease lock");
        let left = lease.expires.map(|e| e.saturating_duration_since(Instant::now())).unwrap_or_default();
        tracing::warn!(
            address = %self.inner.address,
            left_s = left.as_secs(),
            "the vault token expires soon and cannot be renewed; export a new VAULT_TOKEN, or use AppRole or Kubernetes auth"
        );
        // Nothing more to do until it expires: the server's 403 then gives the error.
        self.inner.lease.lock().expect("lease lock").expires = None;
        Ok(())
    }

    fn build(config: &VaultConfig, token: &str) -> Result<Self> {
        let address = config.address.trim_end_matches('/').to_string();
        // vaultrs panics on an address that is not a URL: check it first.
        let url = reqwest::Url::parse(&address)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
        let Some(url) = url else {
            return Err(Error::Config {
                message: format!("address {address:?} is not an http(s) URL"),
                hint: "write the address as http(s)://HOST:PORT, e.g. https://vault.example.com:8200".into(),
            });
        };
        if url.scheme() == "http" && !is_loopback(&url) && !config.allow_insecure_http {
            return Err(Error::Config {
                message: format!(
                    "address {address:?} would send the token in clear text to a host that is not this machine"
                ),
                hint: "use https://…; on a network you trust, set PAVED_VAULT_ALLOW_HTTP=1 in the environment (never in paved.toml)"
                    .into(),
            });
        }
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&address)
            .token(token)
            .timeout(Some(config.timeout))
            .verify(true)
            .namespace(config.namespace.clone())
            .ca_certs(config.ca_cert.iter().map(|p| p.display().to_string()).collect());
        let settings = settings.build().map_err(|e| Error::Config {
            message: format!("address {address:?} is not valid: {e}"),
            hint: "write the address as http(s)://HOST:PORT, e.g. https://vault.example.com:8200".into(),
        })?;
        let client = VaultClient::new(settings).map_err(|e| match e {
            ClientError::FileReadError { path, source } => Error::Config {
                message: format!("cannot read the CA certificate {path}: {source}"),
                hint: "point VAULT_CACERT at a readable PEM file".into(),
            },
            ClientError::ParseCertificateError { path, .. } => Error::Config {
                message: format!("{path} is not a PEM certificate"),
                hint: "point VAULT_CACERT at a PEM file with the CA certificate(s)".into(),
            },
            other => Error::Config {
                message: format!("cannot build the HTTP client: {other}"),
                hint: "check the address and CA certificate settings".into(),
            },
        })?;
        let inner = Inner {
            client: RwLock::new(Arc::new(client)),
            address,
            retries: config.retries,
            backoff: config.backoff,
            timeout: config.timeout,
            auth: config.auth.clone(),
            lease: Mutex::new(Lease::NONE),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        };
        Ok(Client { inner: Arc::new(inner) })
    }

    /// The server address.
    pub(crate) fn address(&self) -> &str {
        &self.inner.address
    }

    /// Runs one API call with retries; maps vaultrs errors to [`Error`] without ever keeping a
    /// response body. Renews the token first when that is due; a request denied because the
    /// token is no longer valid logs in again and is sent once more when the auth method
    /// allows it.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, idempotent: Idempotent, op: F) -> Result<T>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = std::result::Result<T, ClientError>> + Send,
    {
        self.refresh_if_due().await?;
        let generation = self.inner.generation.load(Ordering::SeqCst);
        let client = self.current();
        let denied = match self.call_on(&client, what, idempotent, &op).await {
            Err(e @ Error::PermissionDenied { .. }) => e,
            other => return other,
        };
        // Denied by policy, or is the token no longer valid? Ask the server about the token
        // (the default policy allows every token to look itself up).
        let lookup = self
            .call_on(&client, "auth/token/lookup-self", Idempotent::Yes, &op!(|c| vaultrs::token::lookup_self(c)))
            .await;
        if !matches!(lookup, Err(Error::PermissionDenied { .. })) {
            return Err(denied);
        }
        // A token without the `default` policy may not look itself up either: ask whether the
        // server still accepts it at all, so a policy denial is never taken for an expired token
        // (nor answered with a new login per denied request).
        if self.token_valid(&client).await == Some(true) {
            return Err(denied);
        }
        let Error::PermissionDenied { address, what } = denied else { unreachable!() };
        if !self.inner.auth.can_login() {
            return Err(Error::TokenExpired { address, what });
        }
        {
            let _refreshing = self.inner.refresh.lock().await;
            // Another request may have logged in meanwhile.
            if self.inner.generation.load(Ordering::SeqCst) == generation {
                tracing::debug!(address = %address, what = %what, "the token is no longer valid; logging in again");
                self.login().await?;
            }
        }
        let client = self.current();
        self.call_on(&client, &what, idempotent, &op).await
    }

    /// Runs one API call on `client` with retries (connection errors, 429, 5xx).
    async fn call_on<T, F, Fut>(
        &self,
        client: &Arc<VaultClient>,
        what: &str,
        idempotent: Idempotent,
        op: &F,
    ) -> Result<T>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = std::result::Result<T, ClientError>> + Send,
    {
        let mut attempt = 0u32;
        loop {
            let outcome = op(client.clone()).await;
            let (error, retry) = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => self.classify(e, what, idempotent),
            };
            if !retry || attempt >= self.inner.retries {
                return Err(error);
            }
            let delay = backoff(self.inner.backoff, attempt);
            tracing::debug!(what, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, error = %error, "retrying vault request");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The error to report and whether the request may be retried.
    fn classify(&self, e: ClientError, what: &str, idempotent: Idempotent) -> (Error, bool) {
        let address = self.inner.address.clone();
        let what = what.to_string();
        match e {
            ClientError::APIError { code, errors } => self.status_error(code, errors, what),
            ClientError::RestClientError { source } => match source {
                RustifyError::ServerResponseError { code, .. } => self.status_error(code, Vec::new(), what),
                RustifyError::RequestError { source, .. } => {
                    let (reason, connect) = transport_reason(source.as_ref(), self.inner.timeout);
                    (Error::Unreachable { address, reason }, connect || idempotent == Idempotent::Yes)
                }
                RustifyError::ResponseError { source } => {
                    let (reason, _) = transport_reason(source.as_ref(), self.inner.timeout);
                    (Error::Unreachable { address, reason }, idempotent == Idempotent::Yes)
                }
                other => (Error::Protocol { address, what, reason: other.to_string() }, false),
            },
            other => (Error::Protocol { address, what, reason: other.to_string() }, false),
        }
    }

    fn status_error(&self, status: u16, errors: Vec<String>, what: String) -> (Error, bool) {
        let address = self.inner.address.clone();
        let retry = status == 429 || status >= 500;
        let error = match status {
            503 if errors.iter().any(|e| e.contains("sealed")) => Error::Sealed { address },
            404 if errors.iter().any(|e| e.contains("no handler for route")) => {
                let mount = what.split('/').next().unwrap_or_default().to_string();
                Error::MountNotFound { address, mount }
            }
            403 => Error::PermissionDenied { address, what },
            _ => Error::Api { address, what, status, errors },
        };
        (error, retry)
    }
}

/// Reads a Kubernetes service-account JWT (at every login: the kubelet rotates it).
fn read_jwt(path: &std::path::Path) -> Result<SecretString> {
    let jwt = std::fs::read_to_string(path).map_err(|e| Error::Config {
        message: format!("cannot read the service-account token {}: {}", path.display(), e.kind()),
        hint: "run in a pod with a mounted service-account token, or point VAULT_K8S_JWT_PATH at the JWT file".into(),
    })?;
    let jwt = jwt.trim();
    if jwt.is_empty() {
        return Err(Error::Config {
            message: format!("the service-account token {} is empty", path.display()),
            hint: "point VAULT_K8S_JWT_PATH at the JWT file".into(),
        });
    }
    Ok(SecretString::from(jwt.to_string()))
}

/// Describes a transport error by its innermost cause (`Connection refused`, `timed out`);
/// `true` when the connection was never established (safe to retry any request).
fn transport_reason(e: &(dyn std::error::Error + 'static), timeout: Duration) -> (String, bool) {
    let reqwest = e.downcast_ref::<reqwest::Error>();
    let connect = reqwest.is_some_and(reqwest::Error::is_connect);
    if reqwest.is_some_and(reqwest::Error::is_timeout) {
        return (format!("no answer within {} ms", timeout.as_millis()), connect);
    }
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    (inner.to_string(), connect)
}

/// Exponential backoff with "equal jitter": between half and all of `base * 2^attempt`, at most 5 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(16)).min(Duration::from_secs(5));
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// `GET sys/internal/ui/mounts`: the mounts the caller may see (not in vaultrs).
struct UiMounts;

impl rustify::Endpoint for UiMounts {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        "sys/internal/ui/mounts".into()
    }

    fn method(&self) -> rustify::enums::RequestMethod {
        rustify::enums::RequestMethod::GET
    }
}

/// Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `::1`).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..20 {
            let d = backoff(base, attempt);
            let full = base.saturating_mul(1 << attempt.min(16)).min(Duration::from_secs(5));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
