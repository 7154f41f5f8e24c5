//! Intake: erasure events → validated requests → coalesced, rate-limited deletes →
//! `deletion-requested` events, with offsets stored only over completed work.

mod book;
pub mod coalesce;
mod discovery;
pub mod examples;
mod invalid;
pub mod journal;
pub mod resolve;
mod rounds;
mod run;

use std::future::Future;
use std::sync::Arc;

use crate::api::Clients;
use crate::config::Config;
use crate::event::Limits;
use crate::metrics::Metrics;
use crate::publish::Publisher;
use resolve::Resolver;

/// The maps of the intake's hot path (the book's, the coalescer's), touched several times per event
/// and per trace id: foldhash, seeded at random per process, costs a fraction of SipHash there
/// (which was 3 % of the worker's time under a backlog).
pub type FastMap<K, V> = foldhash::HashMap<K, V>;

/// Largest input event accepted (bytes); larger ones go to the DLQ.
const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// The intake role's shared parts: config, one client per workspace, the resolver, the producer.
pub struct Intake {
    pub config: Config,
    pub clients: Clients,
    pub metrics: Arc<Metrics>,
    resolver: Resolver,
    publisher: Publisher,
    journal: Arc<journal::Journal>,
    limits: Limits,
}

impl Intake {
    pub fn new(config: Config, clients: Clients, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Intake>> {
        let limits = Limits {
            max_event_bytes: MAX_EVENT_BYTES,
            max_ids_per_request: config.intake.max_ids_per_request,
            workspaces: config.workspaces.keys().cloned().collect(),
            default_workspace: config.default_alias().map(str::to_owned),
        };
        let publisher = Publisher::new(crate::kafka::configured(&config, &[]))?;
        let i = &config.intake;
        let resolver = Resolver::new(
            i.session_cache_ttl,
            i.selector_lookback,
            config.verifier.query_api,
            clients.clone(),
        );
        let journal = Arc::new(journal::Journal::new(&config, publisher.clone()));
        Ok(Arc::new(Intake {
            journal,
            config,
            clients,
            metrics,
            resolver,
            publisher,
            limits,
        }))
    }

    /// Runs until `shutdown` resolves, then finishes what is in flight within the grace period.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        run::run(self, shutdown).await
    }
}
