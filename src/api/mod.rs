//! The LangSmith client: deletes, session lookups and run queries for one workspace. Every attempt
//! passes the class's [`Gate`]; transient failures retry with capped, jittered backoff; 401/403 mark
//! the workspace broken and hold its work until the key works again.

mod bisect;
mod check;
pub mod filter;
mod gate;
pub mod retry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::{Config, ConfigError, Limits, RetryConfig, Secret, WorkspaceConfig};
use crate::metrics::Metrics;
pub use check::{QueryApi, Remaining};
pub use gate::Gate;
use retry::{backoff, classify, Action};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Delete,
    /// v1 `runs/query`: discovery, and checks when configured for v1.
    Query,
    /// v2 `traces/query`: checks (LangSmith limits v2 queries separately).
    QueryV2,
    Sessions,
}

impl Class {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Delete => "delete",
            Class::Query => "query",
            Class::QueryV2 => "query_v2",
            Class::Sessions => "sessions",
        }
    }
}

/// An answer that is final for what was sent: a 2xx, or a 4xx other than auth and rate limits.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }
}

/// One client per configured workspace alias, shared by the roles of a process so that they share
/// its rate limits.
pub type Clients = Arc<HashMap<String, LangSmith>>;

pub fn clients(config: &Config, metrics: &Arc<Metrics>) -> Result<Clients, ConfigError> {
    let mut clients = HashMap::new();
    for (alias, ws) in &config.workspaces {
        let key = ws.api_key(alias)?;
        let mut api = LangSmith::new(alias, ws, key, &config.limits, &config.retry);
        api.metrics = Some(metrics.clone());
        clients.insert(alias.clone(), api);
    }
    Ok(Arc::new(clients))
}

pub struct LangSmith {
    alias: String,
    http: reqwest::Client,
    root: String,
    key: Secret,
    tenant: Option<String>,
    delete: Gate,
    query: Gate,
    query_v2: Gate,
    sessions: Gate,
    retry: RetryConfig,
    broken: AtomicBool,
    metrics: Option<Arc<Metrics>>,
}

impl LangSmith {
    pub fn new(alias: &str, ws: &WorkspaceConfig, key: Secret, limits: &Limits, retry: &RetryConfig) -> LangSmith {
        let root = ws.api_url.trim_end_matches('/');
        let root = root.strip_suffix("/api/v1").unwrap_or(root).to_owned();
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("erasure-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        LangSmith {
            alias: alias.to_owned(),
            http,
            root,
            key,
            tenant: ws.tenant_id.clone(),
            delete: Gate::new(limits.delete_per_second),
            query: Gate::new(limits.query_per_second),
            query_v2: Gate::new(limits.query_v2_per_second),
            sessions: Gate::new(limits.sessions_per_second),
            retry: retry.clone(),
            broken: AtomicBool::new(false),
            metrics: None,
        }
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// False after a 401/403 until a request succeeds again.
    pub fn healthy(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    fn gate(&self, class: Class) -> &Gate {
        match class {
            Class::Delete => &self.delete,
            Class::Query => &self.query,
            Class::QueryV2 => &self.query_v2,
            Class::Sessions => &self.sessions,
        }
    }

    /// Sends until the answer is final. Never gives up on transient failures: the caller's work stays
    /// in flight (and its offsets uncommitted) until LangSmith answers or the worker shuts down.
    async fn send(&self, class: Class, build: impl Fn(&reqwest::Client) -> RequestBuilder) -> Answer {
        let gate = self.gate(class);
        let mut attempt = 0u32;
        loop {
            let waited = std::time::Instant::now();
            gate.ready().await;
            self.observe(|m| {
                m.limiter_wait_seconds
                    .with_label_values(&[class.as_str()])
                    .observe(waited.elapsed().as_secs_f64())
            });
            let mut req = build(&self.http).header("x-api-key", self.key.expose());
            if let Some(t) = &self.tenant {
                req = req.header("x-tenant-id", t);
            }
            let sent = tokio::time::Instant::now();
            let result = req.send().await;
            self.observe(|m| {
                let status = match &result {
                    Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => "429",
                    Ok(r) => ["1xx", "2xx", "3xx", "4xx", "5xx"][(r.status().as_u16() / 100).clamp(1, 5) as usize - 1],
                    Err(_) => "error",
                };
                m.requests.with_label_values(&[class.as_str(), status]).inc();
                m.request_seconds
                    .with_label_values(&[class.as_str()])
                    .observe(sent.elapsed().as_secs_f64());
            });
            let wait = match result {
                Err(e) => {
                    tracing::warn!(workspace = %self.alias, ?class, error = %e, attempt, "LangSmith request failed; retrying");
                    backoff(attempt, self.retry.base, self.retry.max)
                }
                Ok(resp) => {
                    let status = resp.status();
                    match classify(status, resp.headers()) {
                        Action::Done | Action::Permanent => {
                            let body = resp.bytes().await.unwrap_or_default();
                            gate.succeeded();
                            if self.broken.swap(false, Ordering::Relaxed) {
                                tracing::info!(workspace = %self.alias, "LangSmith accepts the key again");
                            }
                            return Answer { status, body };
                        }
                        Action::RateLimited(retry_after) => {
                            let pause = gate.rate_limited(retry_after, self.retry.rate_limited_base, sent);
                            tracing::info!(workspace = %self.alias, ?class, pause_ms = pause.as_millis() as u64, "rate limited by LangSmith");
                            continue;
                        }
                        Action::Unauthorized => {
                            if !self.broken.swap(true, Ordering::Relaxed) {
                                tracing::error!(workspace = %self.alias, %status, "LangSmith rejects the API key: this workspace's work is held until it is fixed");
                            }
                            self.retry.max
                        }
                        Action::Retry => {
                            tracing::warn!(workspace = %self.alias, ?class, %status, attempt, "LangSmith error; retrying");
                            backoff(attempt, self.retry.base, self.retry.max)
                        }
                    }
                }
            };
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(wait).await;
        }
    }

    fn observe(&self, f: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.metrics {
            f(m);
        }
    }

    /// `POST /api/v1/runs/delete` for at most 1000 traces of one project.
    pub async fn delete(&self, session: Uuid, trace_ids: &[Uuid]) -> Answer {
        let url = format!("{}/api/v1/runs/delete", self.root);
        let body = json!({"session_id": session, "trace_ids": trace_ids});
        self.send(Class::Delete, |c| c.post(&url).json(&body)).await
    }

    /// The id of the project with exactly this name, if there is one.
    pub async fn session_by_name(&self, name: &str) -> Result<Option<Uuid>, Answer> {
        let url = format!("{}/api/v1/sessions", self.root);
        let a = self
            .send(Class::Sessions, |c| {
                c.get(&url).query(&[("name", name), ("limit", "1")])
            })
            .await;
        let found: Vec<SessionRow> = parse(a)?;
        Ok(found
            .into_iter()
            .find(|s| s.name.as_deref() == Some(name))
            .map(|s| s.id))
    }

    pub async fn session_exists(&self, id: Uuid) -> Result<bool, Answer> {
        let url = format!("{}/api/v1/sessions/{id}", self.root);
        let a = self.send(Class::Sessions, |c| c.get(&url)).await;
        match a.status {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(a),
        }
    }

    /// Every project of the workspace (offset pagination).
    pub async fn all_sessions(&self) -> Result<Vec<Uuid>, Answer> {
        let url = format!("{}/api/v1/sessions", self.root);
        let mut out = Vec::new();
        loop {
            let offset = out.len().to_string();
            let a = self
                .send(Class::Sessions, |c| {
                    c.get(&url).query(&[("offset", offset.as_str()), ("limit", "100")])
                })
                .await;
            let page: Vec<SessionRow> = parse(a)?;
            let n = page.len();
            out.extend(page.into_iter().map(|s| s.id));
            if n < 100 {
                return Ok(out);
            }
        }
    }

    /// Root traces in `sessions` matching `filter` and started in the range, as (session, trace),
    /// paginated through v1 `POST /runs/query`.
    pub async fn root_traces(
        &self,
        sessions: &[Uuid],
        filter: &str,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Vec<(Uuid, Uuid)>, Answer> {
        let url = format!("{}/api/v1/runs/query", self.root);
        let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
        let mut out = Vec::new();
        for chunk in sessions.chunks(100) {
            let mut body = json!({
                "session": chunk, "is_root": true, "filter": filter, "limit": 100,
                "select": ["id", "session_id"], "start_time": time(start), "end_time": time(end),
            });
            loop {
                let a = self.send(Class::Query, |c| c.post(&url).json(&body)).await;
                let page: RunsPage = parse(a)?;
                out.extend(page.runs.iter().map(|r| (r.session_id, r.id)));
                match page
                    .cursors
                    .and_then(|c| c.next)
                    .filter(|n| !n.is_empty() && !page.runs.is_empty())
                {
                    Some(next) => body["cursor"] = Value::String(next),
                    None => break,
                }
            }
        }
        Ok(out)
    }
}

#[derive(Deserialize)]
struct SessionRow {
    id: Uuid,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RunsPage {
    runs: Vec<RunRow>,
    cursors: Option<Cursors>,
}

#[derive(Deserialize)]
struct RunRow {
    id: Uuid,
    session_id: Uuid,
}

#[derive(Deserialize)]
struct Cursors {
    next: Option<String>,
}

/// A 2xx body as `T`; anything else (or a body that does not parse) comes back as the answer.
fn parse<T: serde::de::DeserializeOwned>(a: Answer) -> Result<T, Answer> {
    if !a.ok() {
        return Err(a);
    }
    serde_json::from_slice(&a.body).map_err(|_| Answer {
        status: StatusCode::BAD_GATEWAY,
        body: a.body,
    })
}
