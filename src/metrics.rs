//! Prometheus metrics (`erasure_` prefix, bounded labels: endpoint classes, status classes, outcome
//! and reason names, configured workspaces, topic partitions). One [`Metrics`] per process, with its
//! own registry; the roles and the LangSmith client update it.

use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

pub struct Metrics {
    pub registry: Registry,
    /// 1 while librdkafka reports a broker connection up (from its statistics, every 5 s).
    pub broker_up: IntGauge,
    /// 1 for a workspace whose API key LangSmith refuses (401/403), set when scraped.
    pub workspace_broken: IntGaugeVec,
    /// Consumer lag per (topic, partition) of both roles, from librdkafka's statistics.
    pub consumer_lag: IntGaugeVec,
    /// Partitions of each consumed topic this replica is assigned. Summed over the replicas of a
    /// role it must reach [`Metrics::topic_partitions`]: a partition nobody owns is read by nobody.
    pub partitions_owned: IntGaugeVec,
    /// Partitions of each consumed topic, from the client's metadata (librdkafka's statistics).
    pub topic_partitions: IntGaugeVec,
    /// Input events by outcome: `valid`, `invalid` (dead-lettered).
    pub events: IntCounterVec,
    /// Dead-lettered events by reason.
    pub dlq: IntCounterVec,
    /// Trace ids LangSmith accepted for deletion.
    pub traces_requested: IntCounter,
    /// Distinct ids per delete batch.
    pub batch_ids: Histogram,
    /// LangSmith requests by endpoint class and status class (`2xx`, `4xx`, `429`, `5xx`, `error`).
    pub requests: IntCounterVec,
    /// LangSmith request latency by endpoint class.
    pub request_seconds: HistogramVec,
    /// The share of each class's configured rate this replica applies, per workspace: 1 with
    /// per-replica limits; with workspace-wide ones, what the partitions its roles own give it.
    pub rate_share: GaugeVec,
    /// Time spent waiting for a rate-limiter permit, by endpoint class.
    pub limiter_wait_seconds: HistogramVec,
    /// LangSmith answers that announced a deprecated endpoint (`Deprecation`/`Sunset`), by class.
    pub deprecated_answers: IntCounterVec,
    /// Trace ids of accepted delete calls whose audit record was `found`, or `missing` after
    /// `intake.audit_wait` (workspaces with `organization_id`).
    pub audit_records: IntCounterVec,
    /// 1 for the prefix (`/api/v2` or `/v2`) a workspace's v2 calls were found to answer under.
    pub v2_prefix: IntGaugeVec,
    /// Workspace ids (tenants) learnt from LangSmith because none was configured.
    pub tenant_learnt: IntCounter,
    /// Checks by outcome: `verified` (none left), `partial` (some left, rechecked), `failed`.
    pub checks: IntCounterVec,
    /// Queries sent to LangSmith by checks.
    pub check_queries: IntCounter,
    /// Terminal `deletion-failed` events by reason (both roles).
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

/// Registers `c` and hands it back.
fn reg<C: Collector + Clone + 'static>(r: &Registry, c: Result<C, prometheus::Error>) -> C {
    let c = c.expect("valid metric");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn counters(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(r, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauges(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    reg(r, IntGaugeVec::new(Opts::new(name, help), labels))
}

fn seconds(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    // 1 ms to about 65 s.
    let buckets = exponential_buckets(0.001, 4.0, 9).expect("valid buckets");
    reg(
        r,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels),
    )
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let gauge = |name: &str, help: &str| reg(&r, IntGauge::new(name, help));
        Metrics {
            broker_up: gauge("erasure_broker_up", "1 while a Kafka broker connection is up"),
            workspace_broken: gauges(
                &r,
                "erasure_workspace_broken",
                "1 while LangSmith refuses the workspace's API key",
                &["workspace"],
            ),
            consumer_lag: gauges(
                &r,
                "erasure_consumer_lag",
                "Records behind the end of the partition",
                &["topic", "partition"],
            ),
            partitions_owned: gauges(
                &r,
                "erasure_partitions_owned",
                "Partitions of the topic this replica is assigned",
                &["topic"],
            ),
            topic_partitions: gauges(
                &r,
                "erasure_topic_partitions",
                "Partitions of the consumed topic",
                &["topic"],
            ),
            events: counters(
                &r,
                "erasure_events_consumed_total",
                "Input events by outcome",
                &["outcome"],
            ),
            dlq: counters(&r, "erasure_dlq_total", "Events sent to the DLQ by reason", &["reason"]),
            traces_requested: reg(
                &r,
                IntCounter::new(
                    "erasure_traces_requested_total",
                    "Trace ids LangSmith accepted for deletion",
                ),
            ),
            batch_ids: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("erasure_delete_batch_ids", "Distinct trace ids per delete batch")
                        .buckets(vec![1.0, 10.0, 100.0, 250.0, 500.0, 750.0, 999.0, 1000.0]),
                ),
            ),
            requests: counters(
                &r,
                "erasure_langsmith_requests_total",
                "LangSmith requests by endpoint class and status class",
                &["endpoint", "status"],
            ),
            request_seconds: seconds(
                &r,
                "erasure_langsmith_request_seconds",
                "LangSmith request latency",
                &["endpoint"],
            ),
            rate_share: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "erasure_rate_limit_share",
                        "Share of the class's configured rate this replica applies",
                    ),
                    &["workspace", "endpoint"],
                ),
            ),
            limiter_wait_seconds: seconds(
                &r,
                "erasure_rate_limiter_wait_seconds",
                "Wait for a rate-limiter permit",
                &["endpoint"],
            ),
            deprecated_answers: counters(
                &r,
                "erasure_langsmith_deprecated_answers_total",
                "LangSmith answers carrying Deprecation or Sunset headers",
                &["endpoint"],
            ),
            audit_records: counters(
                &r,
                "erasure_audit_records_total",
                "Trace ids of accepted delete calls by whether their LangSmith audit record was found",
                &["workspace", "outcome"],
            ),
            v2_prefix: gauges(
                &r,
                "erasure_langsmith_v2_prefix",
                "1 for the path prefix LangSmith answers v2 calls under",
                &["workspace", "prefix"],
            ),
            tenant_learnt: reg(
                &r,
                IntCounter::new(
                    "erasure_langsmith_tenant_learnt_total",
                    "Workspace ids learnt from LangSmith (none configured)",
                ),
            ),
            checks: counters(
                &r,
                "erasure_verification_checks_total",
                "Verification checks by outcome",
                &["outcome"],
            ),
            check_queries: reg(
                &r,
                IntCounter::new(
                    "erasure_verification_queries_total",
                    "Queries sent by verification checks",
                ),
            ),
            failed: counters(
                &r,
                "erasure_deletion_failed_total",
                "deletion-failed events by reason",
                &["reason"],
            ),
            pending_verifications: gauge(
                "erasure_verification_pending",
                "Parts waiting for their check in this replica's partitions",
            ),
            oldest_unverified_seconds: reg(
                &r,
                Gauge::new(
                    "erasure_verification_oldest_unverified_seconds",
                    "Age of the oldest part held unverified by this replica",
                ),
            ),
            deadline_at_risk: gauge(
                "erasure_verification_deadline_at_risk",
                "Parts held unverified whose deadline is near",
            ),
            // 1 s to about 76 days: seconds in tests, days in production.
            time_to_verified: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "erasure_time_to_verified_seconds",
                        "Time from a delete's acceptance to its verification",
                    )
                    .buckets(exponential_buckets(1.0, 4.0, 13).expect("valid buckets")),
                ),
            ),
            registry: r,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
