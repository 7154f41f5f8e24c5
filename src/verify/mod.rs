//! Verifier: `deletion-requested` and `recheck` events → a check after the deletion window →
//! `deletion-verified`, a re-request and a recheck, or `deletion-failed` (design §5).
//!
//! Kafka is the delay queue: due times are non-decreasing within a partition, so the verifier only
//! waits on a partition's head. It pauses the partition and keeps the head in memory until it is due,
//! polling all the while so the group keeps the assignment; the head's offset is not stored until its
//! outcome is acknowledged, so a restart or a new owner reads it again.

mod batch;
mod check;
mod decide;
mod parked;
mod run;

use std::future::Future;
use std::sync::Arc;

use crate::api::Clients;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::publish::Publisher;

pub use decide::{decide, Decision};

/// The verifier role's shared parts.
pub struct Verifier {
    pub config: Config,
    pub clients: Clients,
    pub metrics: Arc<Metrics>,
    publisher: Publisher,
    batches: batch::Batches,
}

impl Verifier {
    pub fn new(config: Config, clients: Clients, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Verifier>> {
        let publisher = Publisher::new(crate::kafka::configured(&config, &[]))?;
        let v = &config.verifier;
        let batches = batch::Batches::new(
            v.check_linger,
            config.workspaces.keys().cloned(),
            v.max_concurrent_checks,
        );
        Ok(Arc::new(Verifier {
            batches,
            config,
            clients,
            metrics,
            publisher,
        }))
    }

    /// Runs until `shutdown` resolves, then finishes the checks in flight within the grace period.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        run::run(self, shutdown).await
    }
}
