//! The one HTTP port: `/metrics` (Prometheus text format), `/healthz` (the process answers) and
//! `/readyz` (ready: the broker is reachable and no workspace's key is refused).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;

use crate::api::Clients;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    clients: Clients,
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    clients: Clients,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, clients });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn render(State(s): State<Shared>) -> impl IntoResponse {
    for (alias, api) in s.clients.iter() {
        let broken = i64::from(!api.healthy());
        s.metrics.workspace_broken.with_label_values(&[alias]).set(broken);
    }
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&s.metrics.registry.gather(), &mut body) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_owned())], body).into_response()
}

async fn ready(State(s): State<Shared>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if s.metrics.broker_up.get() == 0 {
        problems.push("the Kafka broker is not reachable".to_owned());
    }
    for (alias, api) in s.clients.iter() {
        if !api.healthy() {
            problems.push(format!("workspace {alias}: LangSmith refuses the API key"));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}
