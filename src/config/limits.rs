//! Rate limits per endpoint class, and the retry policy.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::duration;

/// Requests per second per workspace and endpoint class, under LangSmith's documented per-key
/// limits (1000 per 10 s generally; v1 `runs/query` 15 per 10 s, and by shape 10 per 10 s over at
/// most 7 days or 3 per 10 s over more or without a start time; 300 per 10 s for v2 queries).
/// Fractions are allowed (0.3 is 3 per 10 s). Rate limits are per replica: with R replicas, give
/// each at most `floor(N / R)` requests per window (see the README).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub delete_per_second: f64,
    /// v1 `runs/query` over at most 7 days of start times (selectors with a recent `start_time`).
    pub query_per_second: f64,
    /// v1 `runs/query` over more than 7 days or with no start time (most selectors, v1 checks).
    pub query_wide_per_second: f64,
    pub query_v2_per_second: f64,
    pub sessions_per_second: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            delete_per_second: 50.0,
            query_per_second: 1.0,
            query_wide_per_second: 0.3,
            query_v2_per_second: 25.0,
            sessions_per_second: 20.0,
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
