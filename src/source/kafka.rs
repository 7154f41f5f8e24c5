//! rdkafka's consumer as the source's [`Input`], and a role's loop on one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::saved::{Saved, Saving};
use super::{run, Input, Parts, Receive, Work};
use crate::api::Clients;
use crate::config::Config;
use crate::kafka::RebalanceReporter;
use crate::metrics::Metrics;
use crate::share::Role;

impl Input for StreamConsumer<RebalanceReporter> {
    fn store(&self, topic: &str, partition: i32, offset: i64, metadata: &str) -> anyhow::Result<()> {
        // A list stores the offset to resume at (the single-offset call adds the 1 itself).
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
        if let Some(mut e) = tpl.find_partition(topic, partition) {
            e.set_metadata(metadata);
        }
        Ok(self.store_offsets(&tpl)?)
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> anyhow::Result<()> {
        Ok(Consumer::seek(
            self,
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(5),
        )?)
    }

    fn pause(&self, partitions: &[(&str, i32)], pause: bool) -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in partitions {
            tpl.add_partition(topic, *p);
        }
        match pause {
            true => Consumer::pause(self, &tpl)?,
            false => Consumer::resume(self, &tpl)?,
        }
        Ok(())
    }

    fn commit(&self) -> anyhow::Result<()> {
        Ok(self.commit_consumer_state(CommitMode::Sync)?)
    }

    fn commit_progress(&self, progress: &[(&str, i32, i64, String)]) -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, offset, metadata) in progress {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
            if let Some(mut e) = tpl.find_partition(topic, *partition) {
                e.set_metadata(metadata.as_str());
            }
        }
        Ok(Consumer::commit(self, &tpl, CommitMode::Async)?)
    }

    fn save(&self, topic: &str, partition: i32, text: String) -> Saving {
        self.context().saved().save(topic, partition, text)
    }
}

impl Receive for StreamConsumer<RebalanceReporter> {
    async fn recv(&self) -> anyhow::Result<OwnedMessage> {
        Ok(StreamConsumer::recv(self).await?.detach())
    }
}

/// What a role's consumer reads.
pub struct Subscription<'a> {
    pub group: &'a str,
    pub topics: Vec<String>,
    /// librdkafka settings the role defaults to (the config's `kafka.properties` override them).
    pub defaults: &'a [(&'a str, &'a str)],
    /// The gauge set to the sum of the owned partitions' lags.
    pub lag: Option<prometheus::IntGauge>,
    /// The role, and the clients whose rate limits follow the share of the partitions it owns.
    pub role: Role,
    pub clients: Clients,
}

/// Reports in flight from a role's tasks to its loop; a task waits while the loop catches up.
const REPORTS: usize = 4096;

/// Runs a role on a consumer of `sub` until `shutdown` resolves (see [`run`]). The role is made
/// from the sender its tasks report back on.
pub async fn consume<W: Work>(
    config: &Config,
    metrics: Arc<Metrics>,
    sub: Subscription<'_>,
    work: impl FnOnce(mpsc::Sender<W::Report>) -> W,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (assign_tx, assignments) = mpsc::unbounded_channel();
    let saved = Saved::new(
        &crate::kafka::configured(config, &[]),
        &config.topics.progress,
        sub.group,
    )?;
    let consumer: StreamConsumer<RebalanceReporter> = crate::kafka::consumer_config(config, sub.group, sub.defaults)
        .create_with_context(RebalanceReporter::new(
            assign_tx,
            metrics,
            sub.lag,
            &sub.topics,
            share_to(sub.role, sub.clients),
            saved,
        ))
        .with_context(|| format!("creating the {} consumer", W::ROLE))?;
    let topics: Vec<&str> = sub.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("subscribing to {topics:?}"))?;
    let (tx, reports) = mpsc::channel(REPORTS);
    let parts = Parts {
        consumer: Arc::new(consumer),
        topics: sub.topics,
        work: work(tx),
        assignments,
        reports,
        grace: config.intake.shutdown_grace,
    };
    run(parts, shutdown).await
}

/// Gives each workspace's client the share of `role`'s partitions this replica owns.
fn share_to(role: Role, clients: Clients) -> Box<dyn Fn(f64) + Send + Sync> {
    Box::new(move |share| {
        for api in clients.values() {
            api.own(role, share);
        }
    })
}
