//! Settings: one TOML file (`--config`), with defaults that stay under LangSmith's documented limits.
//! Unknown fields are errors; secrets come from environment variables or files, never the TOML.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    /// Any librdkafka property (SASL, TLS, timeouts), passed through as is.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_group() -> String {
    "erasure-worker-intake".into()
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
        }
    }
}

/// Requests per second per workspace and endpoint class, under LangSmith's documented limits
/// (1000/10 s generally, 15/10 s for v1 runs/query, 300/10 s for v2 queries). Rate limits are per
/// replica: divide by the replica count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub delete_per_second: u32,
    pub query_per_second: u32,
    pub sessions_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            delete_per_second: 50,
            query_per_second: 1,
            sessions_per_second: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    #[serde(deserialize_with = "duration")]
    pub base: Duration,
    #[serde(deserialize_with = "duration")]
    pub max: Duration,
    /// Per-request timeout.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Backoff after a 429 without `Retry-After` starts here and doubles up to 60 s (LangSmith's window).
    #[serde(deserialize_with = "duration")]
    pub rate_limited_base: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            rate_limited_base: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    pub api_url: String,
    pub tenant_id: Option<String>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// File holding the API key (a mounted secret).
    pub api_key_file: Option<PathBuf>,
}

impl fmt::Debug for WorkspaceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkspaceConfig")
            .field("api_url", &self.api_url)
            .field("tenant_id", &self.tenant_id)
            .field("api_key_env", &self.api_key_env)
            .field("api_key_file", &self.api_key_file)
            .finish()
    }
}

/// A secret that never shows in `Debug` or `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl WorkspaceConfig {
    /// Reads the API key from the environment variable or file the config names.
    pub fn api_key(&self, alias: &str) -> Result<Secret, ConfigError> {
        let field = format!("workspaces.{alias}");
        match (&self.api_key_env, &self.api_key_file) {
            (Some(var), None) => std::env::var(var).map(Secret).map_err(|_| {
                invalid(
                    &format!("{field}.api_key_env"),
                    format!("environment variable {var} is not set"),
                )
            }),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim().to_owned()))
                .map_err(|e| {
                    invalid(
                        &format!("{field}.api_key_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                }),
            _ => Err(invalid(&field, "set exactly one of api_key_env and api_key_file")),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, so a bad config fails at start-up and names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        let l = &self.limits;
        if l.delete_per_second == 0 || l.query_per_second == 0 || l.sessions_per_second == 0 {
            return Err(invalid("limits", "every rate must be > 0"));
        }
        if self.workspaces.is_empty() {
            return Err(invalid("workspaces", "configure at least one workspace"));
        }
        for (alias, ws) in &self.workspaces {
            if !(ws.api_url.starts_with("http://") || ws.api_url.starts_with("https://")) {
                return Err(invalid(
                    &format!("workspaces.{alias}.api_url"),
                    "must be an http(s) URL",
                ));
            }
            if let Some(t) = &ws.tenant_id {
                uuid::Uuid::parse_str(t)
                    .map_err(|_| invalid(&format!("workspaces.{alias}.tenant_id"), "must be a UUID"))?;
            }
            ws.api_key(alias)?;
        }
        if let Some(d) = &self.default_workspace {
            if !self.workspaces.contains_key(d) {
                return Err(invalid("default_workspace", format!("no workspace named {d:?}")));
            }
        }
        self.window.validate().map_err(|e| invalid("window", e))?;
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

/// Durations with units: `500ms`, `2s`, `5m`, `6h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or(format!("{s:?} needs a unit (ms, s, m, h, d)"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad number in {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (ms, s, m, h, d)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    // `PATH` stands in for the key variable: it is always set, and tests must not call set_var.
    fn base(extra: &str) -> String {
        format!(
            "[kafka]\nbootstrap = \"127.0.0.1:9092\"\n[workspaces.main]\napi_url = \"http://127.0.0.1:1\"\n\
             api_key_env = \"PATH\"\n{extra}"
        )
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("2w").is_err());
    }

    #[test]
    fn defaults_load_and_bad_fields_are_named() {
        let c = Config::parse(&base("")).expect("minimal config");
        assert_eq!(c.intake.linger, Duration::from_secs(2));
        assert_eq!(c.default_alias(), Some("main"));
        let err = Config::parse(&base("[intake]\nmax_batch = 1001\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("intake.max_batch"), "{err}");
        let err = Config::parse(&base("[intake]\nlinger = \"soon\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("linger"), "{err}");
        let err = Config::parse(&base("surprise = 1\n")).unwrap_err().to_string();
        assert!(err.contains("surprise"), "{err}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let example = include_str!("../config/example.toml")
            .replace("api_key_env = \"LANGSMITH_API_KEY\"", "api_key_env = \"PATH\"");
        let c = Config::parse(&example).expect("config/example.toml parses");
        assert_eq!(c.window, Window::default());
        assert_eq!(c.intake.linger, IntakeConfig::default().linger);
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(format!("{:?}", Secret::new("lsv2_pt_x".into())), "Secret(<redacted>)");
    }
}
