//! `/metrics` and `/healthz` over HTTP, for `paved metrics serve`.
//!
//! `/metrics` answers in OpenMetrics when the client asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does) and in the Prometheus text format
//! otherwise (`curl`, `promtool check metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::error::{Error, Result};

/// Serves `registry` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let registry = registry.clone();
                // Prometheus asks for OpenMetrics; everything else gets the classic text format.
                let openmetrics = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
                async move {
                    // Scrapes read SQLite: keep them off the async workers.
                    match tokio::task::spawn_blocking(move || {
                        let mut out = String::new();
                        prometheus_client::encoding::text::encode(&mut out, &registry).map(|()| out)
                    })
                    .await
                    {
                        Ok(Ok(body)) if openmetrics => {
                            ([(header::CONTENT_TYPE, crate::prom::CONTENT_TYPE)], body).into_response()
                        }
                        Ok(Ok(body)) => (
                            [(header::CONTENT_TYPE, crate::prom::PROMETHEUS_CONTENT_TYPE)],
                            crate::prom::to_prometheus_text(&body),
                        )
                            .into_response(),
                        _ => (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the ledger; see the server log\n")
                            .into_response(),
                    }
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    let addr = listener.local_addr().ok();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(|source| Error::Io {
        path: addr.map_or_else(|| "<listener>".into(), |a: SocketAddr| a.to_string().into()),
        source,
    })
}
