//! Routes, the fault/counter middleware, and request parsing shared by the endpoint modules.
//! Every v1 route answers under `/api/v1/...` and at the bare path the official SDKs use on cloud.

mod admin;
mod audit;
mod auth;
mod error;
mod examples;
mod render;
mod runs;
mod sessions;
mod v2;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use crate::faults::{Class, Verdict};
use crate::Sim;
pub use error::{ApiError, Flavour};

type SimState = State<Arc<Sim>>;

pub fn router(sim: Arc<Sim>) -> Router {
    let v1: Router<Arc<Sim>> = Router::new()
        .route("/runs/delete", post(runs::delete))
        .route("/runs/query", post(runs::query))
        .route("/runs/{id}", get(runs::read))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::read))
        .route("/examples", get(examples::list).delete(examples::soft_delete))
        .route("/audit-logs", get(audit::list));
    let platform: Router<Arc<Sim>> = Router::new()
        .route("/datasets/examples/delete", post(examples::hard_delete))
        .route("/datasets/examples/delete/", post(examples::hard_delete));
    Router::new()
        .nest("/api/v1/platform", platform.clone())
        .nest("/v1/platform", platform)
        .nest("/api/v1", v1.clone())
        .merge(v1)
        .route("/v2/runs/query", post(v2::runs))
        .route("/v2/traces/query", post(v2::traces))
        .route("/api/v2/runs/query", post(v2::runs))
        .route("/api/v2/traces/query", post(v2::traces))
        .nest("/_sim", admin::router())
        .layer(middleware::from_fn_with_state(sim.clone(), observe))
        .with_state(sim)
}

/// The endpoint as counters name it: method and path without the `/api/v1` prefix.
fn endpoint(method: &str, matched: &str) -> String {
    let path = matched
        .strip_prefix("/api")
        .filter(|p| p.starts_with("/v1/platform"))
        .unwrap_or(matched);
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    format!("{method} {}", path.trim_end_matches('/'))
}

fn class_of(endpoint: &str) -> Option<Class> {
    let path = endpoint.split_once(' ').map_or(endpoint, |(_, p)| p);
    Some(match path {
        "/runs/delete" => Class::Delete,
        "/runs/query" => Class::Query,
        "/v2/runs/query" | "/v2/traces/query" | "/api/v2/runs/query" | "/api/v2/traces/query" => Class::QueryV2,
        "/runs/{id}" => Class::RunsRead,
        "/sessions" | "/sessions/{id}" => Class::Sessions,
        "/examples" | "/v1/platform/datasets/examples/delete" => Class::Examples,
        "/audit-logs" => Class::Audit,
        _ => return None,
    })
}

/// The behaviour switches one request needs, read under one lock (this runs for every request).
#[derive(Clone, Copy)]
struct Switches {
    record: bool,
    /// This v2 path is turned off: it answers 404, like an unknown path.
    v2_off: bool,
    deprecation_headers: bool,
}

impl Switches {
    fn of(sim: &Sim, matched: &str) -> Switches {
        let b = sim.behaviour();
        Switches {
            record: b.record_exchanges,
            v2_off: (matched.starts_with("/api/v2/") && !b.serve_api_v2)
                || (matched.starts_with("/v2/") && !b.serve_bare_v2),
            deprecation_headers: b.deprecation_headers,
        }
    }
}

/// Applies the injected faults of the endpoint's class, then counts (and, when asked, records) the
/// answer.
async fn observe(State(sim): SimState, matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let matched = matched.map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    if matched.starts_with("/_sim") {
        return next.run(req).await;
    }
    let switches = Switches::of(&sim, &matched);
    if !switches.record {
        return handle(&sim, &matched, switches, req, next).await;
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut exchange = crate::Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        tenant: parts.headers.contains_key("x-tenant-id"),
        request: serde_json::from_slice(&body).ok(),
        status: 0,
        response: None,
    };
    let response = handle(&sim, &matched, switches, Request::from_parts(parts, body.into()), next).await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    exchange.status = parts.status.as_u16();
    exchange.response = serde_json::from_slice(&body).ok();
    sim.exchanges().push(exchange);
    Response::from_parts(parts, body.into())
}

async fn handle(sim: &Arc<Sim>, matched: &str, switches: Switches, req: Request, next: Next) -> Response {
    let endpoint = endpoint(req.method().as_str(), matched);
    if switches.v2_off {
        sim.counters().call(&endpoint, 404);
        return StatusCode::NOT_FOUND.into_response();
    }
    *sim.counters().received.entry(endpoint.clone()).or_default() += 1;
    let key = auth::header(req.headers(), "x-api-key").unwrap_or_default().to_owned();
    let (latency, verdict) = match class_of(&endpoint) {
        Some(class) => sim.faults().check(class, &key, Instant::now()),
        None => (Default::default(), Verdict::Pass),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut response = match verdict {
        Verdict::Pass => next.run(req).await,
        Verdict::Limited {
            retry_after_secs,
            plain_body,
        } => {
            sim.counters().rate_limited += 1;
            too_many_requests(retry_after_secs, plain_body)
        }
        Verdict::Fail(status) => injected(sim, status),
        Verdict::Lost(status) => {
            next.run(req).await;
            injected(sim, status)
        }
    };
    if endpoint == "POST /runs/query" && switches.deprecation_headers {
        let h = response.headers_mut();
        h.insert("deprecation", header::HeaderValue::from_static("true"));
        h.insert("sunset", header::HeaderValue::from_static(V1_QUERY_SUNSET));
    }
    sim.counters().call(&endpoint, response.status().as_u16());
    response
}

fn injected(sim: &Sim, status: u16) -> Response {
    sim.counters().injected_errors += 1;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, axum::Json(json!({"detail": "Injected failure"}))).into_response()
}

/// When the SDKs stop calling v1 `runs/query` ("after Jan 31, 2027").
const V1_QUERY_SUNSET: &str = "Mon, 01 Feb 2027 00:00:00 GMT";

pub(super) fn too_many_requests(retry_after: Option<u64>, plain: bool) -> Response {
    let mut response = if plain {
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response()
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"detail": "Too many requests"})),
        )
            .into_response()
    };
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// A JSON body; an empty body reads as `{}` (LangSmith's request bodies are optional objects).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8], flavour: Flavour) -> Result<T, ApiError> {
    let src: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(src).map_err(|e| ApiError::invalid(flavour, &["body"], e.to_string()))
}

/// Query-string parameters, with repeated keys for arrays (`id=a&id=b`).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<String>) -> Self {
        let raw = raw.unwrap_or_default();
        Params(form_urlencoded::parse(raw.as_bytes()).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn uuids(&self, name: &str) -> Result<Vec<Uuid>, ApiError> {
        self.all(name)
            .map(|v| {
                Uuid::parse_str(v)
                    .map_err(|_| ApiError::invalid(Flavour::V1, &["query", name], "Input should be a valid UUID"))
            })
            .collect()
    }

    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        Ok(self.uuids(name)?.into_iter().next())
    }

    /// An integer in `range`, or `default` when absent; FastAPI answers 422 outside the range.
    pub fn int(&self, name: &str, default: usize, range: std::ops::RangeInclusive<usize>) -> Result<usize, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                Flavour::V1,
                &["query", name],
                format!("Input should be an integer from {} to {}", range.start(), range.end()),
            )),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| matches!(v, "true" | "True" | "1"))
    }
}
