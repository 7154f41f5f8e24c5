//! Prometheus metrics (`erasure_` prefix, bounded labels). One [`Metrics`] per process, with its own
//! registry; the roles update it.

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

pub struct Metrics {
    pub registry: Registry,
    /// Checks by outcome: `verified` (none left), `partial` (some left, rechecked), `failed`.
    pub checks: IntCounterVec,
    /// Queries the checks sent.
    pub check_queries: IntCounter,
    /// Terminal `deletion-failed` events by reason.
    pub failed: IntCounterVec,
    /// Parts waiting for their check in this replica's partitions (consumer lag of the verifier).
    pub pending_verifications: IntGauge,
    /// Age of the oldest part this replica holds unverified (partition heads, checks in flight).
    pub oldest_unverified_seconds: Gauge,
    /// Parts held unverified whose deadline is nearer than `verifier.deadline_warning`.
    pub deadline_at_risk: IntGauge,
    /// From the delete's acceptance to the check that found the traces gone.
    pub time_to_verified: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let checks = IntCounterVec::new(
            Opts::new("erasure_verification_checks_total", "Verification checks by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let check_queries = IntCounter::new(
            "erasure_verification_queries_total",
            "Queries sent to LangSmith by verification checks",
        )
        .expect("valid metric");
        let failed = IntCounterVec::new(
            Opts::new("erasure_deletion_failed_total", "deletion-failed events by reason"),
            &["reason"],
        )
        .expect("valid metric");
        let pending_verifications = IntGauge::new(
            "erasure_verification_pending",
            "Parts waiting for their check in this replica's partitions",
        )
        .expect("valid metric");
        let oldest_unverified_seconds = Gauge::new(
            "erasure_verification_oldest_unverified_seconds",
            "Age of the oldest part held unverified by this replica",
        )
        .expect("valid metric");
        let deadline_at_risk = IntGauge::new(
            "erasure_verification_deadline_at_risk",
            "Parts held unverified whose deadline is near",
        )
        .expect("valid metric");
        // 1 s to about 76 days: seconds in tests, days in production.
        let time_to_verified = Histogram::with_opts(
            HistogramOpts::new(
                "erasure_time_to_verified_seconds",
                "Time from a delete's acceptance to its verification",
            )
            .buckets(exponential_buckets(1.0, 4.0, 13).expect("valid buckets")),
        )
        .expect("valid metric");
        for c in [
            Box::new(checks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(check_queries.clone()),
            Box::new(failed.clone()),
            Box::new(pending_verifications.clone()),
            Box::new(oldest_unverified_seconds.clone()),
            Box::new(deadline_at_risk.clone()),
            Box::new(time_to_verified.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            checks,
            check_queries,
            failed,
            pending_verifications,
            oldest_unverified_seconds,
            deadline_at_risk,
            time_to_verified,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
