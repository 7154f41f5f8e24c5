//! Injected faults per endpoint class: rate limits answering 429, a share of 5xx, added latency.
//! Defaults follow LangSmith's documented per-key limits (`langsmith-api.md` §7).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Endpoint classes, each with its own limits and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// `POST /runs/delete`
    Delete,
    /// v1 `POST /runs/query`
    Query,
    /// v1 `POST /runs/query` over at most 7 days of start times: a per-workspace tier on top of `Query`.
    QueryNarrow,
    /// v1 `POST /runs/query` over more than 7 days or without `start_time`: the slowest tier.
    QueryWide,
    /// v2 `POST /v2/runs/query`, `POST /v2/traces/query`
    QueryV2,
    /// `GET /sessions`, `GET /sessions/{id}`
    Sessions,
    /// `GET /runs/{id}`
    RunsRead,
    /// `GET /examples`, example hard delete
    Examples,
    /// `GET /audit-logs`
    Audit,
}

impl Class {
    pub const ALL: [Class; 9] = [
        Class::Delete,
        Class::Query,
        Class::QueryNarrow,
        Class::QueryWide,
        Class::QueryV2,
        Class::Sessions,
        Class::RunsRead,
        Class::Examples,
        Class::Audit,
    ];

    /// The documented per-key limit (requests, window): edge table and load-balancer limits.
    fn documented_limit(self) -> (u32, u64) {
        match self {
            Class::Query => (15, 10_000),
            Class::QueryNarrow => (10, 10_000),
            Class::QueryWide => (3, 10_000),
            Class::QueryV2 => (300, 10_000),
            Class::RunsRead => (30, 60_000),
            Class::Examples => (5000, 60_000),
            Class::Delete | Class::Sessions | Class::Audit => (1000, 10_000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window and API key; the window starts at the first request.
    pub requests: u32,
    pub window_ms: u64,
    /// Send `Retry-After` (whole seconds to the window's end). LangSmith documents none.
    #[serde(default)]
    pub retry_after: bool,
    /// Answer with a plain-text body, as an edge proxy might, instead of JSON.
    #[serde(default)]
    pub plain_body: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub rate_limit: Option<RateLimit>,
    /// Share of requests (0..=1) answered with `error_status` instead of being handled.
    #[serde(default)]
    pub error_ratio: f64,
    /// Status for injected errors (default 503).
    pub error_status: Option<u16>,
    #[serde(default)]
    pub latency_ms: u64,
    /// Injected errors come after the request was handled: its effect stands and its answer is
    /// lost, as when a gateway times out after LangSmith acted.
    #[serde(default)]
    pub after_handling: bool,
}

impl FaultSpec {
    pub fn documented(class: Class) -> Self {
        let (requests, window_ms) = class.documented_limit();
        FaultSpec {
            rate_limit: Some(RateLimit {
                requests,
                window_ms,
                retry_after: false,
                plain_body: false,
            }),
            ..Default::default()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_ratio) {
            return Err("error_ratio must be between 0 and 1".into());
        }
        if let Some(s) = self.error_status {
            if !(400..=599).contains(&s) {
                return Err("error_status must be 4xx or 5xx".into());
            }
        }
        match &self.rate_limit {
            Some(r) if r.requests == 0 || r.window_ms == 0 => Err("rate_limit needs requests and window_ms > 0".into()),
            _ => Ok(()),
        }
    }
}

/// What to do with one request.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Pass,
    Limited {
        retry_after_secs: Option<u64>,
        plain_body: bool,
    },
    Fail(u16),
    /// Handled, then answered with this status.
    Lost(u16),
}

pub struct Faults {
    specs: HashMap<Class, FaultSpec>,
    windows: HashMap<(Class, String), (Instant, u32)>,
    rng: Rng,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        let specs = Class::ALL.iter().map(|c| (*c, FaultSpec::documented(*c))).collect();
        Faults {
            specs,
            windows: HashMap::new(),
            rng: Rng::new(seed ^ 0x5EED),
        }
    }

    pub fn specs(&self) -> &HashMap<Class, FaultSpec> {
        &self.specs
    }

    pub fn set(&mut self, class: Class, spec: FaultSpec) {
        self.windows.retain(|(c, _), _| *c != class);
        self.specs.insert(class, spec);
    }

    /// Latency to add, then the verdict, for one request of `class` made with `key` (for the v1 query
    /// tiers, the workspace id: LangSmith counts them per tenant).
    pub fn check(&mut self, class: Class, key: &str, now: Instant) -> (Duration, Verdict) {
        let Some(spec) = self.specs.get(&class) else {
            return (Duration::ZERO, Verdict::Pass);
        };
        let latency = Duration::from_millis(spec.latency_ms);
        if let Some(limit) = &spec.rate_limit {
            let window = Duration::from_millis(limit.window_ms);
            let slot = self.windows.entry((class, key.to_owned())).or_insert((now, 0));
            if now.duration_since(slot.0) >= window {
                *slot = (now, 0);
            }
            if slot.1 >= limit.requests {
                let left = window.saturating_sub(now.duration_since(slot.0));
                let secs = left.as_millis().div_ceil(1000).max(1) as u64;
                let verdict = Verdict::Limited {
                    retry_after_secs: limit.retry_after.then_some(secs),
                    plain_body: limit.plain_body,
                };
                return (latency, verdict);
            }
            slot.1 += 1;
        }
        if spec.error_ratio > 0.0 && self.rng.next_f64() < spec.error_ratio {
            let status = spec.error_status.unwrap_or(503);
            let verdict = if spec.after_handling {
                Verdict::Lost(status)
            } else {
                Verdict::Fail(status)
            };
            return (latency, verdict);
        }
        (latency, Verdict::Pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_counts_per_key_and_resets_with_the_window() {
        let mut f = Faults::new(1);
        let limit = RateLimit {
            requests: 2,
            window_ms: 1000,
            retry_after: true,
            plain_body: false,
        };
        f.set(
            Class::Delete,
            FaultSpec {
                rate_limit: Some(limit),
                ..Default::default()
            },
        );
        let t0 = Instant::now();
        assert_eq!(f.check(Class::Delete, "a", t0).1, Verdict::Pass);
        assert_eq!(f.check(Class::Delete, "a", t0).1, Verdict::Pass);
        let limited = Verdict::Limited {
            retry_after_secs: Some(1),
            plain_body: false,
        };
        assert_eq!(f.check(Class::Delete, "a", t0).1, limited);
        assert_eq!(f.check(Class::Delete, "b", t0).1, Verdict::Pass);
        assert_eq!(
            f.check(Class::Delete, "a", t0 + Duration::from_millis(1000)).1,
            Verdict::Pass
        );
    }

    #[test]
    fn errors_after_handling_lose_the_answer_not_the_effect() {
        let mut f = Faults::new(1);
        let spec = FaultSpec {
            error_ratio: 1.0,
            after_handling: true,
            ..Default::default()
        };
        f.set(Class::Delete, spec);
        assert_eq!(f.check(Class::Delete, "k", Instant::now()).1, Verdict::Lost(503));
    }

    #[test]
    fn error_ratio_is_seeded_and_roughly_right() {
        let spec = FaultSpec {
            error_ratio: 0.25,
            error_status: Some(502),
            ..Default::default()
        };
        let count = |seed| {
            let mut f = Faults::new(seed);
            f.set(Class::Query, spec.clone());
            (0..4000)
                .filter(|_| f.check(Class::Query, "k", Instant::now()).1 == Verdict::Fail(502))
                .count()
        };
        assert_eq!(count(9), count(9));
        assert!((800..1200).contains(&count(9)), "{}", count(9));
    }
}
