//! Kubernetes auth against a real OpenBao dev server (paved-testkit) with its `kubernetes` auth
//! method enabled. The only stand-in is the Kubernetes API server, which cannot run here: a
//! small HTTPS server in this test answers its TokenReview endpoint, with a certificate from a
//! CA made here (rcgen) that OpenBao is configured to trust (`kubernetes_ca_cert`).
//!
//! What OpenBao does on `auth/kubernetes/login` (its builtin kubernetes auth method): it parses
//! the service-account JWT itself, without checking the signature since no `pem_keys` are
//! configured, and checks the service account's name and namespace claims against the role's
//! bindings; then it sends the JWT to `POST /apis/authentication.k8s.io/v1/tokenreviews` with
//! `token_reviewer_jwt` as bearer token, and logs in only when the review answers
//! `authenticated` for `system:serviceaccount:NAMESPACE:NAME` with the UID of the JWT's claims.
//! The stand-in plays the cluster: it authenticates the tokens it issued and has not revoked,
//! and no others, and records every review.
//!
//! The request paved builds (path, body, headers) is also checked against a scripted responder
//! in `kubernetes.rs`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::run_bao;
use paved_core::SecretStore;
use paved_testkit::OpenBao;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// The bearer token OpenBao presents to the API server (`token_reviewer_jwt`).
const REVIEWER_JWT: &str = "reviewer.openbao-token-reviewer.jwt";
/// The audience of the service-account tokens, required by the role.
const AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// The TTL of the tokens the role gives out: short, so that a new login is needed soon.
const TOKEN_TTL: Duration = Duration::from_secs(3);
/// The secret value the role may read; must never show in an error.
const PASSWORD: &str = "pw-canary-5d1e77c0";

/// A service account of the pretend cluster.
#[derive(Debug, Clone, Copy)]
struct ServiceAccount {
    namespace: &'static str,
    name: &'static str,
    uid: &'static str,
}

const PAYMENTS: ServiceAccount =
    ServiceAccount { namespace: "payments", name: "payment-service", uid: "6f1c2b9e-0d3a-4c55-9a1e-7b2f4d8c1a01" };
const BILLING: ServiceAccount =
    ServiceAccount { namespace: "payments", name: "billing-service", uid: "0b7d4e21-5c8f-4a9b-8e3d-2f6a1c9b7e02" };

/// One TokenReview that OpenBao asked for.
#[derive(Debug, Clone)]
struct Review {
    /// The `Authorization` header OpenBao sent.
    authorization: String,
    /// `spec.token`: the JWT under review.
    token: String,
    /// `spec.audiences`.
    audiences: Vec<String>,
    /// What the stand-in answered.
    authenticated: bool,
}

#[derive(Default)]
struct ClusterState {
    /// The tokens the cluster issued and still honours.
    issued: HashMap<String, ServiceAccount>,
    reviews: Vec<Review>,
    /// Requests for anything but a TokenReview (there should be none).
    other: Vec<String>,
}

impl ClusterState {
    /// The status and JSON body answering one request.
    fn answer(&mut self, line: &str, authorization: &str, body: &[u8]) -> (&'static str, String) {
        if line != "POST /apis/authentication.k8s.io/v1/tokenreviews HTTP/1.1" {
            self.other.push(line.to_string());
            return (
                "404 Not Found",
                status_failure(404, "NotFound", "the server could not find the requested resource"),
            );
        }
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return ("400 Bad Request", status_failure(400, "BadRequest", "the body is not JSON"));
        };
        let token = request["spec"]["token"].as_str().unwrap_or_default().to_string();
        let audiences: Vec<String> = request["spec"]["audiences"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if authorization != format!("Bearer {REVIEWER_JWT}") {
            self.reviews.push(Review { authorization: authorization.into(), token, audiences, authenticated: false });
            return ("401 Unauthorized", status_failure(401, "Unauthorized", "Unauthorized"));
        }
        let account = self.issued.get(&token).copied();
        self.reviews.push(Review {
            authorization: authorization.into(),
            token,
            audiences: audiences.clone(),
            authenticated: account.is_some(),
        });
        let status = match account {
            Some(sa) => json!({
                "authenticated": true,
                "user": {
                    "username": format!("system:serviceaccount:{}:{}", sa.namespace, sa.name),
                    "uid": sa.uid,
                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", sa.namespace), "system:authenticated"],
                },
                "audiences": audiences,
            }),
            None => json!({"authenticated": false, "user": {}}),
        };
        let review = json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"audiences": request["spec"]["audiences"]},
            "status": status,
        });
        ("201 Created", review.to_string())
    }
}

/// A Kubernetes `Status` failure, as the API server answers errors.
fn status_failure(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
        .to_string()
}

/// The stand-in Kubernetes API server: HTTPS on 127.0.0.1, TokenReview only.
struct KubeApi {
    url: String,
    ca_pem: String,
    state: Arc<Mutex<ClusterState>>,
}

impl KubeApi {
    fn start() -> KubeApi {
        // A cluster CA and the API server's certificate for 127.0.0.1, signed by it.
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "paved test cluster CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver");
        let cert = params.signed_by(&key, &ca).unwrap();
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .unwrap();
        let tls = Arc::new(tls);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ClusterState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (tls, state) = (tls.clone(), shared.clone());
                std::thread::spawn(move || serve(stream, tls, &state));
            }
        });
        KubeApi { url, ca_pem: ca.pem(), state }
    }

    /// Issues a service-account token (a JWT with the claims of a projected token and a
    /// signature nobody checks here) that the cluster then authenticates.
    fn issue(&self, sa: ServiceAccount, serial: u32) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let header = json!({"alg": "RS256", "kid": "paved-test-signing-key"});
        let claims = json!({
            "aud": [AUDIENCE],
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "iss": AUDIENCE,
            "jti": format!("jti-{}-{serial}", sa.name),
            "sub": format!("system:serviceaccount:{}:{}", sa.namespace, sa.name),
            "kubernetes.io": {
                "namespace": sa.namespace,
                "pod": {"name": format!("{}-7d9f8c-x{serial}", sa.name), "uid": format!("pod-uid-{serial}")},
                "serviceaccount": {"name": sa.name, "uid": sa.uid},
            },
        });
        let signature = format!("not a signature: {} #{serial}", sa.name);
        let jwt = [header.to_string().as_bytes(), claims.to_string().as_bytes(), signature.as_bytes()]
            .map(base64url)
            .join(".");
        self.state.lock().unwrap().issued.insert(jwt.clone(), sa);
        jwt
    }

    /// Stops honouring a token (the kubelet rotated it and it expired, or its pod is gone).
    fn revoke(&self, jwt: &str) {
        self.state.lock().unwrap().issued.remove(jwt);
    }

    fn reviews(&self) -> Vec<Review> {
        self.state.lock().unwrap().reviews.clone()
    }

    fn other_requests(&self) -> Vec<String> {
        self.state.lock().unwrap().other.clone()
    }
}

/// Answers one request on a TLS connection, then closes it.
fn serve(stream: TcpStream, tls: Arc<rustls::ServerConfig>, state: &Mutex<ClusterState>) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let conn = rustls::ServerConnection::new(tls).ok()?;
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, stream));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let (mut authorization, mut length) = (String::new(), 0usize);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => authorization = value.trim().to_string(),
            "content-length" => length = value.trim().parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let (status, answer) = state.lock().unwrap().answer(line.trim(), &authorization, &body);
    let tls = reader.get_mut();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    tls.write_all(response.as_bytes()).ok()?;
    tls.conn.send_close_notify();
    tls.flush().ok()
}

/// Unpadded base64url, as in JWTs.
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// A real OpenBao with the kubernetes auth method configured against the stand-in API server,
/// a role `payments` for the service account `payments/payment-service` that may read
/// `secret/payments/*`, and a directory for token files.
struct Setup {
    bao: OpenBao,
    api: KubeApi,
    dir: PathBuf,
}

impl Setup {
    fn start() -> Option<Setup> {
        let bao = OpenBao::start()?;
        let api = KubeApi::start();
        let dir = std::env::temp_dir().join(format!("paved-k8s-openbao-{}-{}", std::process::id(), bao.port()));
        std::fs::create_dir_all(&dir).unwrap();
        let setup = Setup { bao, api, dir };
        let ca = setup.file("kube-ca.pem", &setup.api.ca_pem);
        let policy = setup.file("payments-read.hcl", "path \"secret/data/payments/*\" { capabilities = [\"read\"] }\n");
        run_bao(&setup.bao, &["auth", "enable", "kubernetes"]);
        run_bao(
            &setup.bao,
            &[
                "write",
                "auth/kubernetes/config",
                &format!("kubernetes_host={}", setup.api.url),
                &format!("kubernetes_ca_cert=@{}", ca.display()),
                &format!("token_reviewer_jwt={REVIEWER_JWT}"),
                "disable_local_ca_jwt=true",
            ],
        );
        run_bao(&setup.bao, &["policy", "write", "payments-read", policy.to_str().unwrap()]);
        run_bao(
            &setup.bao,
            &[
                "write",
                "auth/kubernetes/role/payments",
                "bound_service_account_names=payment-service",
                "bound_service_account_namespaces=payments",
                &format!("audience={AUDIENCE}"),
                "token_policies=payments-read",
                &format!("token_ttl={}s", TOKEN_TTL.as_secs()),
            ],
        );
        run_bao(&setup.bao, &["kv", "put", "secret/payments/db", "username=payments", &format!("password={PASSWORD}")]);
        run_bao(&setup.bao, &["kv", "put", "secret/platform/admin", "token=not-for-payments"]);
        Some(setup)
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A store configuration that logs in with the Kubernetes method, with the JWT at `jwt`.
    fn config(&self, jwt: &Path) -> VaultConfig {
        VaultConfig::new(self.bao.addr(), secrecy::SecretString::from(String::new()))
            .kubernetes("kubernetes", "payments")
            .kubernetes_jwt(jwt)
            .retries(2, Duration::from_millis(10))
    }

    /// The live OpenBao tokens made by Kubernetes logins, as `token lookup` shows them.
    fn kubernetes_tokens(&self) -> Vec<Value> {
        let list: Value =
            serde_json::from_str(&run_bao(&self.bao, &["list", "-format=json", "auth/token/accessors"])).unwrap();
        let mut found = Vec::new();
        for accessor in list.as_array().unwrap() {
            let out = self
                .bao
                .command()
                .args(["token", "lookup", "-format=json", "-accessor", accessor.as_str().unwrap()])
                .output()
                .unwrap();
            if !out.status.success() {
                continue;
            }
            let data = serde_json::from_slice::<Value>(&out.stdout).unwrap()["data"].clone();
            if data["path"] == "auth/kubernetes/login" {
                found.push(data);
            }
        }
        found
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn password(secret: &paved_core::SecretMap) -> &str {
    secret["password"].expose_secret()
}

#[tokio::test]
async fn kubernetes_login_on_openbao_reads_and_logs_in_again_with_the_rotated_jwt() {
    let Some(setup) = Setup::start() else { return };
    let api = &setup.api;
    let first = api.issue(PAYMENTS, 1);
    let token_file = setup.file("token", &format!("{first}\n"));

    // Configured as in a pod: VAULT_ADDR, VAULT_K8S_ROLE, VAULT_K8S_JWT_PATH.
    let vars: HashMap<&str, String> = [
        ("VAULT_ADDR", setup.bao.addr()),
        ("VAULT_K8S_ROLE", "payments".into()),
        ("VAULT_K8S_JWT_PATH", token_file.display().to_string()),
    ]
    .into();
    let config = VaultConfig::from_lookup(|n| vars.get(n).cloned()).unwrap().retries(2, Duration::from_millis(10));
    let store = VaultSecretStore::connect(config).await.unwrap();
    let secret = store.get("payments/db").await.unwrap();
    assert_eq!(password(&secret), PASSWORD);
    assert_eq!(secret["username"].expose_secret(), "payments");

    // OpenBao asked the API server about the JWT from the file, as the token reviewer, for the
    // role's audience; the cluster authenticated it.
    let reviews = api.reviews();
    assert!(!reviews.is_empty(), "the login asked for a TokenReview");
    for review in &reviews {
        assert_eq!(review.token, first, "{review:?}");
        assert_eq!(review.authorization, format!("Bearer {REVIEWER_JWT}"), "{review:?}");
        assert_eq!(review.audiences, [AUDIENCE], "{review:?}");
        assert!(review.authenticated, "{review:?}");
    }
    // The token OpenBao gave out is the service account's, with the role's policy and TTL.
    let tokens = setup.kubernetes_tokens();
    assert!(!tokens.is_empty(), "a token from auth/kubernetes/login");
    for token in &tokens {
        assert_eq!(token["meta"]["service_account_name"], PAYMENTS.name, "{token}");
        assert_eq!(token["meta"]["service_account_namespace"], PAYMENTS.namespace, "{token}");
        assert_eq!(token["meta"]["service_account_uid"], PAYMENTS.uid, "{token}");
        assert_eq!(token["meta"]["role"], "payments", "{token}");
        assert!(token["policies"].as_array().unwrap().contains(&json!("payments-read")), "{token}");
        assert_eq!(token["creation_ttl"], TOKEN_TTL.as_secs(), "{token}");
    }
    // Only what the role's policy allows: not the root token's reach.
    let e = store.get("platform/admin").await.unwrap_err();
    assert!(e.to_string().contains("permission denied on secret/platform/admin"), "{e}");

    // The kubelet rotates the token file; the cluster honours only the new token from now on.
    let second = api.issue(PAYMENTS, 2);
    api.revoke(&first);
    std::fs::write(&token_file, format!("{second}\n")).unwrap();
    let before = api.reviews().len();
    // Idle past the TTL: the OpenBao token is gone, the next read logs in again.
    tokio::time::sleep(TOKEN_TTL + Duration::from_millis(1500)).await;
    let secret = store.get("payments/db").await.unwrap();
    assert_eq!(password(&secret), PASSWORD);
    let reviews = api.reviews();
    let new: Vec<&Review> = reviews[before..].iter().collect();
    assert_eq!(new.len(), 1, "one new login, with the rotated JWT read from the file: {new:?}");
    assert_eq!(new[0].token, second, "{new:?}");
    assert!(new[0].authenticated && new[0].authorization == format!("Bearer {REVIEWER_JWT}"), "{new:?}");

    // The old JWT has the right claims, but the cluster no longer honours it: the TokenReview
    // refuses it, and so does OpenBao.
    let stale = setup.file("stale-token", &first);
    let e = VaultSecretStore::connect(setup.config(&stale)).await.unwrap_err();
    assert!(
        matches!(&e, paved_vault::Error::PermissionDenied { what, .. } if what == "auth/kubernetes/login"),
        "{e:?}"
    );
    let last = api.reviews().pop().unwrap();
    assert!(last.token == first && !last.authenticated, "{last:?}");

    assert!(api.other_requests().is_empty(), "only TokenReviews: {:?}", api.other_requests());
}

#[tokio::test]
async fn a_jwt_of_another_service_account_is_refused_with_a_clear_error() {
    let Some(setup) = Setup::start() else { return };
    // A genuine token of the cluster (its review would succeed), but of a service account the
    // role is not bound to.
    let billing = setup.api.issue(BILLING, 1);
    let jwt = setup.file("billing-token", &billing);
    let e = VaultSecretStore::connect(setup.config(&jwt)).await.unwrap_err();
    assert!(
        matches!(&e, paved_vault::Error::PermissionDenied { what, .. } if what == "auth/kubernetes/login"),
        "{e:?}"
    );
    let hint = e.hint().unwrap();
    let text = format!("{e}\n{e:?}\n{hint}");
    assert!(text.contains(&format!("permission denied on auth/kubernetes/login at {}", setup.bao.addr())), "{text}");
    assert!(hint.contains("the role and service-account token (Kubernetes), and the auth mount"), "{hint}");
    for secret in [PASSWORD, billing.as_str(), REVIEWER_JWT] {
        assert!(!text.contains(secret), "{text}");
    }
    // Through the SecretStore error type as well.
    let e = paved_core::Error::from(e);
    let text = common::error_text(&e);
    assert!(text.contains("auth/kubernetes/login") && text.contains("service-account token"), "{text}");
    assert!(!text.contains(PASSWORD) && !text.contains(&billing), "{text}");
    // Refused on the role's bindings, before any TokenReview.
    assert!(setup.api.reviews().is_empty(), "{:?}", setup.api.reviews());
}
