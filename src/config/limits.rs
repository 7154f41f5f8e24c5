//! Rate limits per endpoint class, and the retry policy.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::duration;

/// Requests per second per workspace and endpoint class, under LangSmith's documented per-key
/// limits (1000 per 10 s generally; v1 `runs/query` 15 per 10 s, and by shape 10 per 10 s over at
/// most 7 days or 3 per 10 s over more or without a start time; 300 per 10 s for v2 queries).
/// Fractions are allowed (0.3 is 3 per 10 s). With `scope = "workspace"` (the default when no rate
/// is set) they are totals for all replicas, shared by the partitions each owns; with
/// `scope = "replica"` each replica applies them as they are. A config that sets a rate must say
/// which: the meaning of its numbers differs by the replica count.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawLimits")]
pub struct Limits {
    pub scope: Scope,
    pub delete_per_second: f64,
    /// v1 `runs/query` over at most 7 days of start times (selectors with a recent `start_time`).
    pub query_per_second: f64,
    /// v1 `runs/query` over more than 7 days or with no start time (most selectors, v1 checks).
    pub query_wide_per_second: f64,
    pub query_v2_per_second: f64,
    pub sessions_per_second: f64,
    /// Audit-log lookups (workspaces with `organization_id`; LangSmith's general 1000 per 10 s).
    pub audit_per_second: f64,
    /// Dataset example searches, hard deletes and read-backs (LangSmith: `GET …/examples` 5000 per
    /// 60 s, the rest 1000 per 10 s).
    pub examples_per_second: f64,
    /// The verifier's fraction of each class both roles use; the intake takes the rest.
    pub verifier_fraction: Fractions,
}

/// What the rates of `[limits]` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Totals for the workspace's key, shared by the replicas by the partitions each owns.
    Workspace,
    /// Each replica's own rates (the meaning before `scope` existed).
    Replica,
}

/// The verifier's fraction of each class's total under `scope = "workspace"` (between 0 and 1,
/// exclusive). Narrow v1 queries (`query_per_second`) are the intake's alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fractions {
    /// Deletes re-requested after a check found traces still present.
    pub delete: f64,
    /// v1 checks (`verifier.query_api = "v1"`); the intake's selectors and project checks use the rest.
    pub query_wide: f64,
    /// v2 checks, one per part; the intake checks which project named traces are in with the rest,
    /// one per delete call (as many as parts, or fewer).
    pub query_v2: f64,
    /// Project lookups for a tenant id; the intake resolves project names with the rest.
    pub sessions: f64,
}

impl Default for Fractions {
    fn default() -> Self {
        Fractions {
            delete: 0.2,
            query_wide: 0.5,
            query_v2: 0.5,
            sessions: 0.1,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            scope: Scope::Workspace,
            delete_per_second: 50.0,
            query_per_second: 1.0,
            query_wide_per_second: 0.3,
            query_v2_per_second: 25.0,
            sessions_per_second: 20.0,
            audit_per_second: 5.0,
            examples_per_second: 50.0,
            verifier_fraction: Fractions::default(),
        }
    }
}

/// `[limits]` as written: which rates it sets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    scope: Option<Scope>,
    delete_per_second: Option<f64>,
    query_per_second: Option<f64>,
    query_wide_per_second: Option<f64>,
    query_v2_per_second: Option<f64>,
    sessions_per_second: Option<f64>,
    audit_per_second: Option<f64>,
    examples_per_second: Option<f64>,
    verifier_fraction: Option<Fractions>,
}

impl TryFrom<RawLimits> for Limits {
    type Error = String;

    fn try_from(raw: RawLimits) -> Result<Limits, String> {
        let d = Limits::default();
        let rates = [
            raw.delete_per_second,
            raw.query_per_second,
            raw.query_wide_per_second,
            raw.query_v2_per_second,
            raw.sessions_per_second,
            raw.audit_per_second,
            raw.examples_per_second,
        ];
        let scope = match raw.scope {
            Some(scope) => scope,
            None if rates.iter().any(Option::is_some) => {
                return Err(
                    "limits.scope must be set when [limits] sets a rate: \"workspace\" (the rates are \
                            the key's totals, shared by the replicas) or \"replica\" (each replica's own, \
                            as before limits.scope existed)"
                        .into(),
                )
            }
            None => Scope::Workspace,
        };
        Ok(Limits {
            scope,
            delete_per_second: raw.delete_per_second.unwrap_or(d.delete_per_second),
            query_per_second: raw.query_per_second.unwrap_or(d.query_per_second),
            query_wide_per_second: raw.query_wide_per_second.unwrap_or(d.query_wide_per_second),
            query_v2_per_second: raw.query_v2_per_second.unwrap_or(d.query_v2_per_second),
            sessions_per_second: raw.sessions_per_second.unwrap_or(d.sessions_per_second),
            audit_per_second: raw.audit_per_second.unwrap_or(d.audit_per_second),
            examples_per_second: raw.examples_per_second.unwrap_or(d.examples_per_second),
            verifier_fraction: raw.verifier_fraction.unwrap_or_default(),
        })
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
