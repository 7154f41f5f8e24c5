//! What the integration tests (`tests/it`) and the benchmarks (`benches/`) share: the Tansu test
//! broker started by `scripts/kafka-broker`, a worker process that does not outlive its test, Kafka
//! readers, and names no other test uses.

mod broker;
mod kafka;
mod worker;

pub use broker::Broker;
pub use kafka::{client_config, drop_consumer, reader_from_start};
pub use worker::Worker;

use std::sync::atomic::{AtomicUsize, Ordering};

/// The worker's topics, by the short names the tests and benchmarks prefix with a name of their own
/// (`requests` first).
pub const TOPICS: [&str; 9] = [
    "requests",
    "dlq",
    "requested",
    "recheck",
    "verified",
    "failed",
    "examples",
    "resolutions",
    "progress",
];

/// A name no other test in this process uses (topics, groups, directories).
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
