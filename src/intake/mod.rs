//! Intake: erasure events → validated requests → coalesced, rate-limited deletes →
//! `deletion-requested` events, with offsets stored only over completed work.

mod book;
pub mod coalesce;
mod delete;
pub mod offsets;
mod output;
pub mod resolve;
mod run;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use rdkafka::config::ClientConfig;

use crate::api::LangSmith;
use crate::config::Config;
use crate::event::Limits;
use crate::publish::Publisher;
use resolve::Resolver;

/// Largest input event accepted (bytes); larger ones go to the DLQ.
const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// The intake role's shared parts: config, one client per workspace, the resolver, the producer.
pub struct Intake {
    pub config: Config,
    pub clients: HashMap<String, LangSmith>,
    resolver: Resolver,
    publisher: Publisher,
    limits: Limits,
}

impl Intake {
    pub fn new(config: Config) -> anyhow::Result<Arc<Intake>> {
        let mut clients = HashMap::new();
        for (alias, ws) in &config.workspaces {
            let key = ws.api_key(alias)?;
            clients.insert(
                alias.clone(),
                LangSmith::new(alias, ws, key, &config.limits, &config.retry),
            );
        }
        let limits = Limits {
            max_event_bytes: MAX_EVENT_BYTES,
            max_ids_per_request: config.intake.max_ids_per_request,
            workspaces: config.workspaces.keys().cloned().collect(),
            default_workspace: config.default_alias().map(str::to_owned),
        };
        let publisher = Publisher::new(kafka_config(&config, &[]))?;
        let resolver = Resolver::new(config.intake.session_cache_ttl);
        Ok(Arc::new(Intake {
            config,
            clients,
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

/// The librdkafka config: bootstrap servers, then `defaults`, then every `kafka.properties` entry
/// passed through (so an operator can override the defaults).
pub fn kafka_config(config: &Config, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = crate::kafka::client_config(&config.kafka.bootstrap);
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c
}
