//! The LangSmith client: deletes, session lookups and run queries for one workspace. Every attempt
//! passes the class's [`Gate`]; transient failures retry with capped, jittered backoff; a 401 (or a
//! 403 on a workspace-level call) marks the workspace broken and holds its work until the key works
//! again; a 403 on one project's delete or query ends after a few tries, for that project only.

mod audit;
mod bisect;
mod check;
mod discover;
mod examples;
pub mod filter;
mod gate;
mod owners;
mod rates;
pub mod retry;
mod send;
mod sessions;
mod together;
mod v2;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use crate::config::{Config, ConfigError, Limits, RetryConfig, Secret, WorkspaceConfig};
use crate::event::FailReason;
use crate::metrics::Metrics;
pub use check::Remaining;
pub use discover::{Found, Roots, Search};
pub use examples::{Sourced, EXAMPLES_PER_DELETE, MAX_EXAMPLES};
pub use gate::Gate;
pub use owners::V2Run;
use send::SplitAfter;
pub use together::{Share, Together};
pub use v2::V2Prefix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Delete,
    /// v1 `runs/query` over at most 7 days of start times (LangSmith's 10 per 10 s tier).
    Query,
    /// v1 `runs/query` over more than 7 days, or with no start time (the 3 per 10 s tier).
    QueryWide,
    /// v2 `traces/query`: checks (LangSmith limits v2 queries separately).
    QueryV2,
    Sessions,
    /// `GET /audit-logs`: a delete call's audit record (organizations with `organization_id`).
    Audit,
    /// Dataset examples: searches, hard deletes and read-backs.
    Examples,
}

impl Class {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Delete => "delete",
            Class::Query => "query",
            Class::QueryWide => "query_wide",
            Class::QueryV2 => "query_v2",
            Class::Sessions => "sessions",
            Class::Audit => "audit",
            Class::Examples => "examples",
        }
    }
}

/// An answer that is final for what was sent: a 2xx, a 4xx other than auth and rate limits, or a
/// 403 that persisted.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// Why ids this answer refused fail.
    pub fn refusal(&self, what: &str) -> Refusal {
        Refusal::of(self.status, what)
    }
}

/// LangSmith refused a request for good: a final answer other than a 2xx (transport errors, 5xx
/// and 2xx bodies that do not parse are retried, never returned).
#[derive(Debug, Clone, thiserror::Error)]
#[error("LangSmith answered HTTP {}", .status.as_u16())]
pub struct Refused {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

impl From<Answer> for Refused {
    fn from(a: Answer) -> Refused {
        Refused {
            status: a.status,
            body: a.body,
        }
    }
}

impl Refused {
    /// Why ids this refusal concerns fail.
    pub fn refusal(&self, what: &str) -> Refusal {
        Refusal::of(self.status, what)
    }
}

impl Refusal {
    /// `forbidden` for a 403, `unknown_session` for a 404, else `rejected_by_api`.
    fn of(status: StatusCode, what: &str) -> Refusal {
        let reason = match status {
            StatusCode::FORBIDDEN => FailReason::Forbidden,
            StatusCode::NOT_FOUND => FailReason::UnknownSession,
            _ => FailReason::RejectedByApi,
        };
        Refusal {
            reason,
            detail: format!("LangSmith answered HTTP {} to {what}", status.as_u16()),
        }
    }
}

/// Why LangSmith refused ids for good.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: FailReason,
    pub detail: String,
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
    /// `X-Tenant-Id`: configured, or learnt from a project object before the first v2 call.
    tenant: OnceLock<String>,
    /// `X-Organization-Id`, for the audit log (see `audit.rs`).
    organization: Option<String>,
    /// Where the platform endpoints live (see `examples.rs`).
    platform: String,
    /// Whether the dataset examples a selector reaches are erased.
    erase_examples: bool,
    learning: tokio::sync::Mutex<Option<std::time::Instant>>,
    v2: V2Prefix,
    delete: Gate,
    query: Gate,
    query_wide: Gate,
    query_v2: Gate,
    sessions: Gate,
    audit: Gate,
    examples: Gate,
    /// The configured limits, and the share of the partitions this replica's roles own.
    limits: Limits,
    shares: Mutex<crate::share::Shares>,
    retry: RetryConfig,
    broken: AtomicBool,
    /// Endpoint classes that announced their deprecation (logged once each).
    deprecated: Mutex<Vec<Class>>,
    /// The workspace's projects, as last listed (see `owners.rs`).
    projects: owners::Projects,
    metrics: Option<Arc<Metrics>>,
}

/// Redirects are followed only within the origin of the first request: `x-api-key` must never be
/// sent to another host (reqwest drops only the standard credential headers across hosts). A
/// redirect elsewhere comes back as the 3xx, which holds the workspace as misconfigured.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        if first != Some(attempt.url().origin()) || attempt.previous().len() > 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// The API root: `api_url` without a trailing `/`, `/api/v1` or `/api` (as the official SDK does),
/// so every path can be written from the root.
pub fn api_root(api_url: &str) -> String {
    let root = api_url.trim_end_matches('/');
    let root = root
        .strip_suffix("/api/v1")
        .or_else(|| root.strip_suffix("/api"))
        .unwrap_or(root);
    root.trim_end_matches('/').to_owned()
}

impl LangSmith {
    pub fn new(alias: &str, ws: &WorkspaceConfig, key: Secret, limits: &Limits, retry: &RetryConfig) -> LangSmith {
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("erasure-worker/", env!("CARGO_PKG_VERSION")))
            .redirect(same_origin_redirects())
            .build()
            .unwrap_or_default();
        let tenant = OnceLock::new();
        if let Some(t) = &ws.tenant_id {
            let _ = tenant.set(t.clone());
        }
        LangSmith {
            alias: alias.to_owned(),
            http,
            root: api_root(&ws.api_url),
            key,
            tenant,
            organization: ws.organization_id.clone(),
            platform: examples::platform_prefix(&ws.api_url),
            erase_examples: ws.erase_examples,
            learning: tokio::sync::Mutex::new(None),
            v2: V2Prefix::new(ws.v2_path.as_deref()),
            delete: Gate::new(limits.delete_per_second),
            query: Gate::new(limits.query_per_second),
            query_wide: Gate::new(limits.query_wide_per_second),
            query_v2: Gate::new(limits.query_v2_per_second),
            sessions: Gate::new(limits.sessions_per_second),
            audit: Gate::new(limits.audit_per_second),
            examples: Gate::new(limits.examples_per_second),
            limits: limits.clone(),
            shares: Mutex::default(),
            retry: retry.clone(),
            broken: AtomicBool::new(false),
            deprecated: Mutex::default(),
            projects: owners::Projects::default(),
            metrics: None,
        }
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// False after a 401 (or a workspace-level 403) until a request succeeds again.
    pub fn healthy(&self) -> bool {
        !self.broken.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn gate(&self, class: Class) -> &Gate {
        match class {
            Class::Delete => &self.delete,
            Class::Query => &self.query,
            Class::QueryWide => &self.query_wide,
            Class::QueryV2 => &self.query_v2,
            Class::Sessions => &self.sessions,
            Class::Audit => &self.audit,
            Class::Examples => &self.examples,
        }
    }

    fn observe(&self, f: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.metrics {
            f(m);
        }
    }

    /// `POST /api/v1/runs/delete` for at most 1000 traces of one project; with `split`, repeated
    /// 5xx answers can be final (see [`LangSmith::send_bounded`]).
    pub async fn delete(&self, session: Uuid, trace_ids: &[Uuid], split: Option<SplitAfter>) -> Answer {
        let url = format!("{}/api/v1/runs/delete", self.root);
        let body = serde_json::json!({"session_id": session, "trace_ids": trace_ids});
        self.send_bounded(Class::Delete, |c| c.post(&url).json(&body), split)
            .await
    }
}

#[derive(Deserialize)]
struct Cursors {
    next: Option<String>,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod root_tests {
    use super::api_root;

    #[test]
    fn api_urls_are_normalised_to_the_root() {
        for url in [
            "https://api.smith.langchain.com",
            "https://api.smith.langchain.com/",
            "https://api.smith.langchain.com/api",
            "https://api.smith.langchain.com/api/",
            "https://api.smith.langchain.com/api/v1",
            "https://api.smith.langchain.com/api/v1/",
        ] {
            assert_eq!(api_root(url), "https://api.smith.langchain.com", "{url}");
        }
        assert_eq!(
            api_root("http://host:8080/langsmith/api/v1"),
            "http://host:8080/langsmith"
        );
    }
}
