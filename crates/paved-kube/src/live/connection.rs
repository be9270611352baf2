//! How the live target reaches a cluster: a kubeconfig (with a context), the in-cluster
//! service account, or a `kube::Client` handed in by the embedding service.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use paved_core::{Error, Result};
use tokio::sync::OnceCell;

use super::TARGET_NAME;
use super::bearer::{BearerLayer, ExecReplacement, TokenSource};

/// Where the cluster is. Connecting is lazy: nothing is read or dialled until the first
/// operation, so a platform that has a kube target but deploys elsewhere never needs a
/// kubeconfig.
#[derive(Clone)]
pub struct Connection {
    source: Source,
    cell: std::sync::Arc<OnceCell<Connected>>,
    tokens: Tokens,
}

/// Bearer tokens paved issues itself instead of the kubeconfig's credentials.
#[derive(Clone, Default)]
struct Tokens {
    /// Always this source.
    always: Option<std::sync::Arc<dyn TokenSource>>,
    /// This source for a kubeconfig user without credentials of its own.
    bare: Option<std::sync::Arc<dyn TokenSource>>,
    /// A source for exec entries it recognises.
    exec: Option<ExecReplacement>,
}

#[derive(Clone)]
enum Source {
    Kubeconfig { path: Option<PathBuf>, context: Option<String> },
    InCluster,
    Client { client: Client, description: String },
}

/// A client and a human description of the cluster it talks to.
#[derive(Clone)]
pub(crate) struct Connected {
    pub(crate) client: Client,
    pub(crate) description: String,
}

impl fmt::Debug for Connection {
    // Never prints credentials: only where the configuration comes from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Kubeconfig { path, context } => {
                f.debug_struct("Connection").field("kubeconfig", path).field("context", context).finish()
            }
            Source::InCluster => f.write_str("Connection(in-cluster)"),
            Source::Client { description, .. } => f.debug_tuple("Connection").field(description).finish(),
        }
    }
}

impl Connection {
    /// A kubeconfig: `path` (default: `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster
    /// service account) and `context` (default: the kubeconfig's current context).
    pub fn kubeconfig(path: Option<PathBuf>, context: Option<String>) -> Self {
        Connection::from_source(Source::Kubeconfig { path, context })
    }

    /// The pod's service account (`KUBERNETES_SERVICE_HOST`, the mounted token and CA).
    pub fn in_cluster() -> Self {
        Connection::from_source(Source::InCluster)
    }

    /// A client built by the embedding service; `description` names the cluster in messages.
    pub fn client(client: Client, description: impl Into<String>) -> Self {
        Connection::from_source(Source::Client { client, description: description.into() })
    }

    fn from_source(source: Source) -> Self {
        Connection { source, cell: std::sync::Arc::new(OnceCell::new()), tokens: Tokens::default() }
    }

    /// Authenticates every request with a token from `source` instead of the kubeconfig's
    /// user credentials (its exec entry, token or client certificate); the cluster's address
    /// and CA still come from the kubeconfig. For a cluster that takes tokens paved signs
    /// itself (EKS).
    pub fn token_source(mut self, source: std::sync::Arc<dyn TokenSource>) -> Self {
        self.tokens.always = Some(source);
        self
    }

    /// Authenticates with a token from `source` when the kubeconfig's user has no credentials
    /// of its own (no token, certificate, password, exec entry or auth provider): what a
    /// setting from a repository's configuration may do, since it then cannot trade a
    /// restricted user for another identity.
    pub fn token_source_for_bare_user(mut self, source: std::sync::Arc<dyn TokenSource>) -> Self {
        self.tokens.bare = Some(source);
        self
    }

    /// When the kubeconfig's user has an exec entry that `replace` recognises (e.g.
    /// `aws eks get-token`), the token comes from the source it returns instead of running the
    /// command.
    pub fn replace_exec(mut self, replace: ExecReplacement) -> Self {
        self.tokens.exec = Some(replace);
        self
    }

    /// Connects (once) and returns the client, for other tools on the same cluster
    /// (`paved admission audit`).
    pub async fn client_now(&self) -> Result<Client> {
        Ok(self.get().await?.client.clone())
    }

    /// Connects (once) and returns the client.
    pub(crate) async fn get(&self) -> Result<&Connected> {
        self.cell.get_or_try_init(|| connect(&self.source, &self.tokens)).await
    }
}

async fn connect(source: &Source, tokens: &Tokens) -> Result<Connected> {
    match source {
        Source::Client { client, description } => {
            Ok(Connected { client: client.clone(), description: description.clone() })
        }
        Source::InCluster => {
            let config = Config::incluster().map_err(|e| {
                config_error(
                    format!("cannot load the in-cluster configuration: {e}"),
                    "run inside a pod with a service account, or use a kubeconfig (`kubeconfig`, `context`)",
                )
            })?;
            let description = format!("in-cluster at {}", config.cluster_url);
            client_for(config, description, tokens.always.clone())
        }
        Source::Kubeconfig { path, context } => {
            // `$KUBECONFIG` may list several files (`a:b`), merged like kubectl does. As in
            // client-go, a listed file that does not exist is skipped; one that exists but cannot
            // be read or parsed is an error, never silently skipped.
            let from_env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
            let default_file =
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")).filter(|p| p.exists());
            let explicit = path.clone().or_else(|| from_env.clone().map(PathBuf::from));
            let kubeconfig = match (path, &from_env) {
                (Some(p), _) => Some(Kubeconfig::read_from(p).map_err(|e| {
                    config_error(format!("cannot read the kubeconfig {}: {e}", p.display()), "check the `kubeconfig`")
                })?),
                (None, Some(list)) => kubeconfig_list(list)?,
                (None, None) if default_file.is_some() => Some(Kubeconfig::read().map_err(|e| {
                    config_error(
                        format!("cannot read the kubeconfig ~/.kube/config: {e}"),
                        "fix or move ~/.kube/config, or give another `kubeconfig`",
                    )
                })?),
                (None, None) => None,
            };
            let Some(kubeconfig) = kubeconfig else {
                // No kubeconfig anywhere: the in-cluster service account, if there is one.
                if context.is_none()
                    && let Ok(config) = Config::incluster()
                {
                    let description = format!("in-cluster at {}", config.cluster_url);
                    return client_for(config, description, tokens.always.clone());
                }
                let found = match &from_env {
                    Some(list) => format!("the files KUBECONFIG={} lists do not exist", list.to_string_lossy()),
                    None => "KUBECONFIG is unset and ~/.kube/config does not exist".into(),
                };
                return Err(config_error(
                    format!("no kubeconfig found ({found}) and not running in a cluster"),
                    "give a `kubeconfig` (or set KUBECONFIG) and a `context`",
                ));
            };
            let file = explicit.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "~/.kube/config".into());
            let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
            let chosen = context.clone().or_else(|| kubeconfig.current_context.clone());
            match &chosen {
                Some(name) if !names.contains(name) => {
                    return Err(Error::invalid(
                        "context",
                        name.as_str(),
                        format!("is not a context of the kubeconfig {file}"),
                        Some(paved_core::suggest::hint_for(name, names.iter().map(String::as_str))),
                    ));
                }
                None => {
                    return Err(config_error(
                        format!("the kubeconfig {file} has no current context"),
                        "give a `context` (see `kubectl config get-contexts`)",
                    ));
                }
                Some(_) => {}
            }
            let options = KubeConfigOptions { context: chosen.clone(), ..KubeConfigOptions::default() };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| {
                config_error(
                    format!("cannot use context \"{}\" of {file}: {e}", chosen.clone().unwrap_or_default()),
                    "check the context with `kubectl config view --minify`",
                )
            })?;
            let description = format!("context \"{}\" at {}", chosen.unwrap_or_default(), config.cluster_url);
            let replaced = match (&tokens.exec, &config.auth_info.exec) {
                (Some(replace), Some(exec)) => {
                    let command = exec.command.clone().unwrap_or_default();
                    let env: Vec<(String, String)> = exec
                        .env
                        .iter()
                        .flatten()
                        .filter_map(|e| Some((e.get("name")?.clone(), e.get("value")?.clone())))
                        .collect();
                    replace(&command, exec.args.as_deref().unwrap_or_default(), &env)
                }
                _ => None,
            };
            let bare = tokens.bare.clone().filter(|_| !has_credentials(&config.auth_info));
            client_for(config, description, tokens.always.clone().or(replaced).or(bare))
        }
    }
}

/// The files `$KUBECONFIG` lists, merged in order (the first file to set a value wins, as in
/// kubectl); files that do not exist are skipped, and `None` when none exists.
fn kubeconfig_list(list: &std::ffi::OsStr) -> Result<Option<Kubeconfig>> {
    let mut seen = Vec::new();
    let mut merged: Option<Kubeconfig> = None;
    for path in std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()) {
        if seen.contains(&path) || !path.exists() {
            continue;
        }
        let read = Kubeconfig::read_from(&path).and_then(|next| match merged.take() {
            Some(m) => m.merge(next),
            None => Ok(next),
        });
        merged = Some(read.map_err(|e| {
            config_error(
                format!("cannot read the kubeconfig {} (listed in KUBECONFIG): {e}", path.display()),
                "fix the file, or take it out of KUBECONFIG (a list of files separated by ':')",
            )
        })?);
        seen.push(path);
    }
    Ok(merged)
}

/// Whether a kubeconfig user brings credentials of its own.
fn has_credentials(auth: &kube::config::AuthInfo) -> bool {
    auth.exec.is_some()
        || auth.auth_provider.is_some()
        || auth.token.is_some()
        || auth.token_file.is_some()
        || auth.username.is_some()
        || auth.client_certificate.is_some()
        || auth.client_certificate_data.is_some()
}

fn client_for(
    mut config: Config,
    description: String,
    tokens: Option<std::sync::Arc<dyn TokenSource>>,
) -> Result<Connected> {
    // Fail fast on a cluster that does not answer; watches get their own, longer timeouts.
    config.connect_timeout = Some(Duration::from_secs(10));
    let built = match tokens {
        None => Client::try_from(config),
        Some(source) => {
            // paved's token replaces every credential of the kubeconfig's user (an auth provider
            // would overwrite the header, a client certificate would win over it).
            let auth = &mut config.auth_info;
            (auth.exec, auth.auth_provider, auth.token, auth.token_file) = (None, None, None, None);
            (auth.username, auth.password) = (None, None);
            (auth.client_certificate, auth.client_certificate_data) = (None, None);
            (auth.client_key, auth.client_key_data) = (None, None);
            kube::client::ClientBuilder::try_from(config).map(|b| b.with_layer(&BearerLayer::new(source)).build())
        }
    };
    let client = built.map_err(|e| Error::Backend {
        backend: TARGET_NAME.into(),
        message: format!("cannot build a Kubernetes client for {description}"),
        hint: Some("check the kubeconfig's certificates and credentials".into()),
        source: Some(Box::new(e)),
    })?;
    Ok(Connected { client, description })
}

fn config_error(message: String, hint: &str) -> Error {
    Error::backend(TARGET_NAME, message, Some(hint.to_string()))
}
