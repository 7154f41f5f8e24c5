//! Settings: one TOML file (`--config`), with defaults that stay under LangSmith's documented limits.
//! Unknown fields are errors; secrets come from environment variables or files, never the TOML.

mod env;
mod limits;
mod workspace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use limits::{Fractions, Limits, RetryConfig, Scope};
pub use workspace::{Secret, WorkspaceConfig};

use crate::duration::duration;
use crate::topics;
use crate::window::Window;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub topics: Topics,
    #[serde(default)]
    pub intake: IntakeConfig,
    #[serde(default)]
    pub verifier: VerifierConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub window: Window,
    /// LangSmith workspaces by alias; events name one in `workspace`, or get `default_workspace`.
    pub workspaces: BTreeMap<String, WorkspaceConfig>,
    pub default_workspace: Option<String>,
    /// CloudEvents `source` of the events the worker publishes.
    #[serde(default = "default_source")]
    pub event_source: String,
}

fn default_source() -> String {
    "urn:erasure-worker".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap: String,
    #[serde(default = "default_group")]
    pub intake_group: String,
    #[serde(default = "default_verifier_group")]
    pub verifier_group: String,
    /// Any librdkafka property (SASL, TLS, timeouts), passed through as is.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_group() -> String {
    "erasure-worker-intake".into()
}

fn default_verifier_group() -> String {
    "erasure-worker-verifier".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    pub requests: String,
    pub dlq: String,
    pub deletion_requested: String,
    pub recheck: String,
    pub deletion_verified: String,
    pub deletion_failed: String,
    /// Dataset examples erased, or not (`erasure.examples.{erased,failed}.v1`).
    pub examples: String,
    /// The intake's resolution journal (what each selector resolved to, by input offset).
    pub resolutions: String,
    /// Both roles' progress too long for a commit's metadata (`source/saved.rs`).
    pub progress: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            requests: topics::REQUESTS.into(),
            dlq: topics::DLQ.into(),
            deletion_requested: topics::DELETION_REQUESTED.into(),
            recheck: topics::RECHECK.into(),
            deletion_verified: topics::DELETION_VERIFIED.into(),
            deletion_failed: topics::DELETION_FAILED.into(),
            examples: topics::EXAMPLES.into(),
            resolutions: topics::RESOLUTIONS.into(),
            progress: topics::PROGRESS.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// How long a batch waits for more ids after its first one.
    #[serde(deserialize_with = "duration")]
    pub linger: Duration,
    /// Ids per delete call (LangSmith accepts at most 1000).
    pub max_batch: usize,
    /// Past this many ids in flight, input partitions are paused (polling goes on).
    pub max_in_flight_ids: usize,
    /// Larger requests are dead-lettered.
    pub max_ids_per_request: usize,
    /// Delete calls in flight at once per workspace.
    pub max_concurrent_calls: usize,
    /// Stop (rather than dead-letter everything) when this share of the last `dlq_window` events was invalid.
    pub dlq_stop_ratio: f64,
    pub dlq_window: usize,
    /// Time allowed on SIGTERM to flush, finish calls, publish and commit.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// How long a resolved session name is trusted.
    #[serde(deserialize_with = "duration")]
    pub session_cache_ttl: Duration,
    /// How far back a selector without `start_time` searches for traces that started (LangSmith
    /// keeps traces up to 400 days). Sent as an explicit lower bound: LangSmith rates queries with
    /// no `start_time` in its slowest tier.
    #[serde(deserialize_with = "duration")]
    pub selector_lookback: Duration,
    /// With a workspace's `organization_id`: how long a batch's events wait for its delete calls'
    /// audit records (LangSmith may write them late). A record not found by then is counted and
    /// logged; the events go without it.
    #[serde(deserialize_with = "duration")]
    pub audit_wait: Duration,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            linger: Duration::from_secs(2),
            max_batch: 1000,
            max_in_flight_ids: 100_000,
            max_ids_per_request: 100_000,
            max_concurrent_calls: 4,
            dlq_stop_ratio: 0.95,
            dlq_window: 1000,
            shutdown_grace: Duration::from_secs(30),
            session_cache_ttl: Duration::from_secs(600),
            selector_lookback: Duration::from_secs(400 * DAY),
            audit_wait: Duration::from_secs(10),
        }
    }
}

const DAY: u64 = 86_400;
/// LangSmith's extended retention: the oldest a trace the worker is asked to erase can be.
const LONGEST_RETENTION_DAYS: u64 = 400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:9464".into(),
        }
    }
}

/// Which query API answers the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryApi {
    /// v2 `traces/query` with `trace_ids` (LangSmith's fast path for known traces), under
    /// `/api/v2` (or `/v2`, see `api/v2.rs`).
    #[default]
    V2,
    /// `POST /api/v1/runs/query` with an `id` list, for installs without the v2 API.
    V1,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// Whether the install has the v2 API: `v2` checks through `/api/v2/traces/query` and searches
    /// selectors (and the look before each delete) through `/api/v2/runs/query`; `v1` uses
    /// `/api/v1/runs/query` for all of them.
    pub query_api: QueryApi,
    /// Checks per part before `deletion-failed` (one per deletion window).
    pub max_attempts: u32,
    /// Re-request the delete for ids still present before the next check.
    pub re_request: bool,
    /// How far back the v2 query searches for a trace's start (LangSmith keeps traces up to 400 days).
    #[serde(deserialize_with = "duration")]
    pub lookback: Duration,
    /// Check queries (and re-requests) calling LangSmith at once, per workspace (256 times as many
    /// parts may wait for a query or for Kafka).
    pub max_concurrent_checks: usize,
    /// How long a project's parts that fell due wait for others to share their check's query
    /// (one query names up to 1,000 trace ids; see `verify/batch.rs`).
    #[serde(deserialize_with = "duration")]
    pub check_linger: Duration,
    /// A pending part whose deadline is nearer than this counts as at risk (metric).
    #[serde(deserialize_with = "duration")]
    pub deadline_warning: Duration,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            query_api: QueryApi::V2,
            max_attempts: 3,
            re_request: true,
            lookback: Duration::from_secs(400 * DAY),
            max_concurrent_checks: 16,
            check_linger: Duration::from_secs(1),
            deadline_warning: Duration::from_secs(7 * DAY),
        }
    }
}

impl Config {
    /// The TOML file with the process's `ERASURE__…` environment overrides applied.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse_with_env(&text, std::env::vars())
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// `text` with the `ERASURE__…` variables among `vars` applied (see `config/env.rs`).
    pub fn parse_with_env(text: &str, vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        env::apply(&mut table, vars)?;
        // Parsed again from text, so errors keep naming the key.
        Config::parse(&table.to_string())
    }

    /// Cross-field checks, so a bad config fails at start-up and names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_intake()?;
        self.validate_verifier()?;
        self.validate_workspaces()?;
        self.window.validate().map_err(|e| invalid("window", e))
    }

    fn validate_intake(&self) -> Result<(), ConfigError> {
        let i = &self.intake;
        if !(1..=1000).contains(&i.max_batch) {
            return Err(invalid(
                "intake.max_batch",
                "must be 1..=1000 (LangSmith's limit per call)",
            ));
        }
        if i.max_in_flight_ids < i.max_batch {
            return Err(invalid("intake.max_in_flight_ids", "must be at least intake.max_batch"));
        }
        if i.max_concurrent_calls == 0 || i.max_ids_per_request == 0 {
            return Err(invalid(
                "intake",
                "max_concurrent_calls and max_ids_per_request must be > 0",
            ));
        }
        if !(0.0..=1.0).contains(&i.dlq_stop_ratio) {
            return Err(invalid("intake.dlq_stop_ratio", "must be between 0 and 1 (0 disables)"));
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("http.listen", "must be an address and port, e.g. 0.0.0.0:9464"));
        }
        if !(DAY..=3650 * DAY).contains(&i.selector_lookback.as_secs()) {
            return Err(invalid("intake.selector_lookback", "must be from 1 day to 10 years"));
        }
        if i.audit_wait >= i.shutdown_grace {
            return Err(invalid(
                "intake.audit_wait",
                "must be shorter than intake.shutdown_grace: a batch answered at shutdown still publishes its events",
            ));
        }
        Ok(())
    }

    fn validate_verifier(&self) -> Result<(), ConfigError> {
        let (i, v) = (&self.intake, &self.verifier);
        if v.lookback
            < i.selector_lookback
                .max(Duration::from_secs(LONGEST_RETENTION_DAYS * DAY))
        {
            return Err(invalid(
                "verifier.lookback",
                format!(
                    "must be at least intake.selector_lookback and {LONGEST_RETENTION_DAYS} days (LangSmith's longest \
                     retention): a check searches no further back, and a trace older than that would pass as gone"
                ),
            ));
        }
        if v.max_attempts == 0 || v.max_concurrent_checks == 0 {
            return Err(invalid(
                "verifier",
                "max_attempts and max_concurrent_checks must be > 0",
            ));
        }
        let l = &self.limits;
        let rates = [
            l.delete_per_second,
            l.query_per_second,
            l.query_wide_per_second,
            l.query_v2_per_second,
            l.sessions_per_second,
            l.audit_per_second,
        ];
        if rates.iter().any(|r| !(r.is_finite() && *r >= 0.001)) {
            return Err(invalid("limits", "every rate must be at least 0.001 per second"));
        }
        let f = &l.verifier_fraction;
        if [f.delete, f.query_wide, f.query_v2, f.sessions]
            .iter()
            .any(|f| !(*f > 0.0 && *f < 1.0))
        {
            return Err(invalid(
                "limits.verifier_fraction",
                "every fraction must be between 0 and 1 (both roles make calls of each class)",
            ));
        }
        Ok(())
    }

    fn validate_workspaces(&self) -> Result<(), ConfigError> {
        if self.workspaces.is_empty() {
            return Err(invalid("workspaces", "configure at least one workspace"));
        }
        for (alias, ws) in &self.workspaces {
            if let Some(problem) = ws.url_problem() {
                return Err(invalid(&format!("workspaces.{alias}.api_url"), problem));
            }
            for (field, id) in [("tenant_id", &ws.tenant_id), ("organization_id", &ws.organization_id)] {
                if id.as_deref().is_some_and(|id| uuid::Uuid::parse_str(id).is_err()) {
                    return Err(invalid(&format!("workspaces.{alias}.{field}"), "must be a UUID"));
                }
            }
            if ws
                .v2_path
                .as_deref()
                .is_some_and(|p| !p.starts_with('/') || p.contains(['?', '#']))
            {
                return Err(invalid(
                    &format!("workspaces.{alias}.v2_path"),
                    "must be a path starting with /, e.g. /api/v2",
                ));
            }
            ws.api_key(alias)?;
        }
        if let Some(d) = &self.default_workspace {
            if !self.workspaces.contains_key(d) {
                return Err(invalid("default_workspace", format!("no workspace named {d:?}")));
            }
        }
        Ok(())
    }

    /// The workspace alias an event without one uses: `default_workspace`, or the only one configured.
    pub fn default_alias(&self) -> Option<&str> {
        match &self.default_workspace {
            Some(d) => Some(d),
            None if self.workspaces.len() == 1 => self.workspaces.keys().next().map(String::as_str),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests;
