//! `/metrics` and `/healthz` over HTTP, for `paved metrics serve`.
//!
//! `/metrics` answers in OpenMetrics, as prometheus-client encodes it; Prometheus (which asks
//! for OpenMetrics) and any text reader take it as it is.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
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
            get(move || {
                let registry = registry.clone();
                async move {
                    // Scrapes read SQLite: keep them off the async workers.
                    match tokio::task::spawn_blocking(move || crate::prom::encode(&registry)).await {
                        Ok(Ok(body)) => ([(header::CONTENT_TYPE, crate::prom::CONTENT_TYPE)], body).into_response(),
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
