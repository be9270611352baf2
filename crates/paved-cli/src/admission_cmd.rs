//! `paved admission`: the policies as a Kubernetes admission webhook (`serve`), the manifests
//! that run it (`install --render`), and an audit of what already runs (`audit`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use paved::admission::audit::AuditOptions;
use paved::admission::install::{Certificates, InstallOptions};
use paved::admission::{Admission, CertificateFiles, Loader};
use paved::{Assembly, Error, OrgConfig, Result};

use crate::args::Format;
use crate::kube_cmd::{TargetKind, TargetSelect};
use crate::output::{document, raw};

/// `paved admission …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AdmissionCommand {
    /// Serve the policies as a validating (/validate) and mutating (/mutate) webhook over
    /// HTTPS, with /healthz, /readyz and /metrics. Policies and the certificate are reloaded
    /// when their files change; SIGTERM drains requests in flight.
    #[command(after_help = "Examples:
  paved admission serve --cert tls.crt --key tls.key
  paved admission serve --listen 127.0.0.1:8443 --cert tls.crt --key tls.key --config /etc/paved/paved.toml")]
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: SocketAddr,
        /// The serving certificate chain (PEM).
        #[arg(long, value_name = "FILE", required_unless_present = "insecure_http")]
        cert: Option<PathBuf>,
        /// Its private key (PEM).
        #[arg(long, value_name = "FILE", required_unless_present = "insecure_http")]
        key: Option<PathBuf>,
        /// Serve plain HTTP (behind a proxy that terminates TLS; the API server calls only HTTPS).
        #[arg(long, conflicts_with_all = ["cert", "key"])]
        insecure_http: bool,
        /// How often the policy and certificate files are checked for changes.
        #[arg(long, value_parser = crate::kube_cmd::parse_duration, default_value = "2s", value_name = "DURATION")]
        reload_interval: Duration,
    },
    /// Print the manifests that run the webhook in a cluster (apply them with kubectl).
    #[command(after_help = "Examples:
  paved admission install --render | kubectl apply --server-side -f -
  paved admission install --render --certificates generate --allow-from 10.0.0.0/24")]
    Install {
        /// Print the manifests (the only mode: paved never applies its own webhook).
        #[arg(long, required = true)]
        render: bool,
        /// Where the serving certificate comes from.
        #[arg(long, value_enum, default_value_t = CertSource::CertManager)]
        certificates: CertSource,
        /// The image running `paved admission serve`.
        #[arg(long, default_value = concat!("ghcr.io/paved-dev/paved:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// The image holds /etc/paved/paved.toml and the plugins: render no ConfigMap of them.
        #[arg(long)]
        policies_in_image: bool,
        /// Open the webhook port only to this address range (CIDR; repeatable), e.g. the
        /// control plane's [default: any source].
        #[arg(long, value_name = "CIDR")]
        allow_from: Vec<String>,
    },
    /// Evaluate the policies on the objects already in the cluster and write PolicyReports
    /// (wgpolicyk8s.io/v1alpha2) per namespace; exit 1 when an object fails a policy.
    #[command(after_help = "Examples:
  paved admission audit --target kube
  paved admission audit --target kube --dry-run -o json")]
    Audit {
        #[command(flatten)]
        target: TargetSelect,
        /// Evaluate and print; write no reports.
        #[arg(long)]
        dry_run: bool,
        /// Objects per list request.
        #[arg(long, default_value_t = 500)]
        page_size: u32,
    },
}

/// `--certificates`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CertSource {
    /// cert-manager issues it and injects the CA into the webhook configurations.
    CertManager,
    /// Generate a CA and the certificate now (a TLS Secret; the CA as caBundle).
    Generate,
}

pub(crate) async fn admission(cmd: AdmissionCommand, config: OrgConfig, format: Format) -> Result<ExitCode> {
    match cmd {
        AdmissionCommand::Serve { listen, cert, key, insecure_http: _, reload_interval } => {
            let tls = match (cert, key) {
                (Some(cert), Some(key)) => Some(CertificateFiles::load(cert, key)?),
                _ => None,
            };
            // Reloads read the configuration again, from where it was found.
            let source = config.source.clone();
            let loader: Loader = Arc::new(move || {
                let config = match &source {
                    Some(path) => OrgConfig::discover(Some(path))?,
                    None => OrgConfig::default(),
                };
                Assembly::new(config).admission_policies()
            });
            let admission = Admission::from_loader(loader)?;
            // The server gets a multi-threaded runtime of its own (the CLI's is single-threaded).
            tokio::task::spawn_blocking(move || serve(admission, listen, tls, reload_interval))
                .await
                .map_err(|e| Error::backend("admission", format!("the server thread stopped: {e}"), None))??;
            Ok(ExitCode::SUCCESS)
        }
        AdmissionCommand::Install { render: _, certificates, image, policies_in_image, allow_from } => {
            let policies = Assembly::new(config).admission_policies()?;
            let options = InstallOptions {
                image,
                certificates: match certificates {
                    CertSource::CertManager => Certificates::CertManager,
                    CertSource::Generate => Certificates::Generate,
                },
                policies_in_image,
                allow_from,
            };
            let objects = paved::admission::install::render(&policies, &options)?;
            match format {
                Format::Text | Format::Yaml => {
                    for object in &objects {
                        raw(&format!("---\n{}", paved::yaml::to_string(object)));
                    }
                }
                _ => document(format, &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects})),
            }
            Ok(ExitCode::SUCCESS)
        }
        AdmissionCommand::Audit { target, dry_run, page_size } => {
            if target.target != Some(TargetKind::Kube) {
                return Err(Error::invalid(
                    "target",
                    if target.target.is_some() { "gitops" } else { "(none)" },
                    "is not a cluster the audit can list",
                    Some("use --target kube (with --kubeconfig/--context as needed)".into()),
                ));
            }
            let mut kube = paved::KubeOptions::default();
            kube.kubeconfig = target.kubeconfig.clone();
            kube.context = target.context.clone();
            let assembly = Assembly::new(config).kube(kube);
            let policies = assembly.admission_policies()?;
            let client = assembly.kube_client().await?;
            let summary =
                paved::admission::audit::audit(client, &policies, &AuditOptions { page_size, write: !dry_run }).await?;
            match format {
                Format::Text => {
                    out!(
                        "{} audited {} objects: {} pass, {} fail, {} warn, {} error{}",
                        if summary.total.fail > 0 { "❌" } else { "✅" },
                        summary.objects,
                        summary.total.pass,
                        summary.total.fail,
                        summary.total.warn,
                        summary.total.error,
                        if dry_run { " (dry run: no reports written)" } else { "" }
                    );
                    let rows: Vec<Vec<String>> = summary
                        .policies
                        .iter()
                        .map(|(p, c)| {
                            vec![
                                p.clone(),
                                c.pass.to_string(),
                                c.fail.to_string(),
                                c.warn.to_string(),
                                c.error.to_string(),
                            ]
                        })
                        .collect();
                    crate::output::table(&["POLICY", "PASS", "FAIL", "WARN", "ERROR"], &rows);
                    if !dry_run {
                        out!(
                            "   reports: {} (PolicyReport/ClusterPolicyReport {})",
                            summary.reports.len(),
                            paved::admission::audit::REPORT_NAME
                        );
                    }
                    for kind in &summary.unlisted_kinds {
                        err!("⚠️  kind {kind} is named by a policy but not audited (not a kind the audit lists)");
                    }
                }
                _ => document(format, &summary),
            }
            Ok(if summary.total.fail > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}

fn serve(
    admission: Arc<Admission>,
    listen: SocketAddr,
    tls: Option<Arc<CertificateFiles>>,
    every: Duration,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("paved-admission")
        .build()
        .map_err(|e| Error::backend("admission", format!("cannot start the server runtime: {e}"), None))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            Error::invalid(
                "listen",
                listen.to_string(),
                format!("cannot be listened on: {e}"),
                Some("choose another --listen address".into()),
            )
        })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        err!(
            "✅ paved admission webhook on {scheme}://{}: /validate /mutate /healthz /readyz /metrics ({} policies)",
            listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admission.policies().set.policies().len()
        );
        let _watch = admission.watch(every, tls.clone());
        admission
            .serve(listener, tls, shutdown_signal())
            .await
            .map_err(|e| Error::backend("admission", format!("the server stopped: {e}"), None))
    })
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    err!("stopping: finishing the requests in flight");
}
