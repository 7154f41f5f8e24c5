//! Kafka plumbing shared by the roles, the demo and the tests.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Config;
use crate::share::Ownership;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic}: {code}")]
    CreateTopic { topic: String, code: RDKafkaErrorCode },
}

/// A client config for `bootstrap` (host:port list).
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// The librdkafka config: bootstrap servers, then `defaults`, then every `kafka.properties` entry
/// passed through (so an operator can override the defaults).
pub fn configured(config: &Config, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = client_config(&config.kafka.bootstrap);
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c
}

/// A consumer in `group` for at-least-once work: it commits (every 100 ms) only the offsets the
/// code stores once their work is done, and starts at the earliest offset when the group has none.
/// `defaults` come before the operator's `kafka.properties`; the guarantee's settings after.
pub fn consumer_config(config: &Config, group: &str, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut all = vec![STATS_INTERVAL, COMMIT_INTERVAL];
    all.extend_from_slice(defaults);
    let mut c = configured(config, &all);
    c.set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    c
}

/// Creates the topics that do not exist yet (the test broker does not auto-create them).
pub async fn create_topics(bootstrap: &str, names: &[&str], partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Partition changes seen by the consumer, forwarded to the loop that owns the offsets.
#[derive(Debug, PartialEq)]
pub enum Assignment {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
    /// Partitions just assigned, with their committed offset and its metadata (as read from the
    /// group right after the assignment; those it could not read are missing).
    Committed(Vec<(String, i32, i64, String)>),
}

/// A consumer context that reports rebalances on a channel. It turns the partition lists into plain
/// vectors at once: holding a librdkafka list past the consumer's drop hangs the drop. librdkafka's
/// statistics (`statistics.interval.ms`) set the broker and topic-size metrics, the lag of each
/// partition this replica owns, and `lag` (when given) to their sum; rebalances set the partitions
/// owned.
pub struct RebalanceReporter {
    tx: tokio::sync::mpsc::UnboundedSender<Assignment>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    lag: Option<prometheus::IntGauge>,
    /// The assignment, of the partitions of the topics read. librdkafka's statistics go on
    /// reporting a revoked partition's last lag.
    owned: std::sync::Mutex<Ownership>,
    /// Told the share of the partitions owned whenever it changes (see `share.rs`).
    on_share: Box<dyn Fn(f64) + Send + Sync>,
    /// Where progress too long for a commit's metadata is saved, and read back.
    saved: crate::source::saved::Saved,
}

impl RebalanceReporter {
    /// A reporter for a consumer of `topics`; `on_share` is told the share of their partitions the
    /// consumer owns, on every assignment and revocation and when the partitions change. The
    /// progress `saved` there is read back for each partition assigned.
    pub fn new(
        tx: tokio::sync::mpsc::UnboundedSender<Assignment>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        lag: Option<prometheus::IntGauge>,
        topics: &[String],
        on_share: Box<dyn Fn(f64) + Send + Sync>,
        saved: crate::source::saved::Saved,
    ) -> RebalanceReporter {
        RebalanceReporter {
            tx,
            metrics,
            lag,
            owned: std::sync::Mutex::new(Ownership::new(topics)),
            on_share,
            saved,
        }
    }

    /// Where the source saves progress too long for a commit's metadata.
    pub fn saved(&self) -> &crate::source::saved::Saved {
        &self.saved
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, Ownership> {
        self.owned.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the share owned, if it is known.
    fn share(&self, owned: &Ownership) {
        if let Some(share) = owned.share() {
            (self.on_share)(share);
        }
    }

    /// Adds (or removes) `parts` to the assignment and sets the owned-partition gauges; a removed
    /// partition's lag series goes.
    fn own(&self, parts: &[(String, i32)], owned: bool) -> std::sync::MutexGuard<'_, Ownership> {
        let mut set = self.owned();
        if owned {
            set.assign(parts);
        } else {
            set.revoke(parts);
            for part in parts {
                // A partition this replica no longer owns must not keep reporting its last lag.
                let _ = self
                    .metrics
                    .consumer_lag
                    .remove_label_values(&[part.0.as_str(), &part.1.to_string()]);
            }
        }
        for (topic, _) in parts {
            self.metrics
                .partitions_owned
                .with_label_values(&[topic.as_str()])
                .set(set.owned_of(topic) as i64);
        }
        set
    }
}

/// How often librdkafka reports statistics to [`RebalanceReporter`].
pub const STATS_INTERVAL: (&str, &str) = ("statistics.interval.ms", "5000");

/// How often the stored offsets are committed (librdkafka's default is 5 s). A replica that dies
/// leaves the next owner to redo what it finished since its last commit: a shorter interval means
/// fewer duplicates, for a few small requests a second.
pub const COMMIT_INTERVAL: (&str, &str) = ("auto.commit.interval.ms", "100");

impl rdkafka::ClientContext for RebalanceReporter {
    fn stats(&self, stats: rdkafka::Statistics) {
        let up = stats.brokers.values().any(|b| b.nodeid >= 0 && b.state == "UP");
        self.metrics.broker_up.set(i64::from(up));
        let mut total = 0;
        let mut owned = self.owned();
        let mut news = false;
        for (topic, t) in &stats.topics {
            let known = t.partitions.keys().filter(|&&p| p >= 0).count();
            self.metrics
                .topic_partitions
                .with_label_values(&[topic.as_str()])
                .set(known as i64);
            news |= known > 0 && owned.partitions(topic, known);
            for p in t
                .partitions
                .values()
                .filter(|p| p.consumer_lag >= 0 && owned.owns(&(topic.clone(), p.partition)))
            {
                total += p.consumer_lag;
                self.metrics
                    .consumer_lag
                    .with_label_values(&[topic.as_str(), &p.partition.to_string()])
                    .set(p.consumer_lag);
            }
        }
        if let Some(lag) = &self.lag {
            lag.set(total);
        }
        if news {
            self.share(&owned);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for RebalanceReporter {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        if let rdkafka::consumer::Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            let owned = self.own(&parts, false);
            self.share(&owned);
            drop(owned);
            let _ = self.tx.send(Assignment::Revoked(parts));
        }
    }

    fn post_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if let rdkafka::consumer::Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            let mut owned = self.own(&parts, true);
            learn_partitions(consumer, &mut owned);
            self.share(&owned);
            drop(owned);
            let _ = self.tx.send(Assignment::Assigned(parts));
            let mut committed = committed(consumer, tpl);
            for (topic, partition, _, metadata) in &mut committed {
                *metadata = self.saved.load(topic, *partition, std::mem::take(metadata));
            }
            if !committed.is_empty() {
                let _ = self.tx.send(Assignment::Committed(committed));
            }
        }
    }
}

/// The offsets the group committed for `tpl`, with their metadata; none when the group cannot tell
/// (the partitions are then read from the committed offset and everything after it is done again).
fn committed<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    tpl: &rdkafka::TopicPartitionList,
) -> Vec<(String, i32, i64, String)> {
    use rdkafka::consumer::Consumer as _;
    match consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
        Ok(list) => (list.elements().iter())
            .filter_map(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => Some((e.topic().to_owned(), e.partition(), o, e.metadata().to_owned())),
                _ => None,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "committed offsets not read: work done past them is done again");
            Vec::new()
        }
    }
}

/// Asks the cluster how many partitions each topic read has (for the share owned). A topic it cannot
/// tell about keeps what is known; librdkafka's statistics tell again every few seconds.
fn learn_partitions<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    owned: &mut Ownership,
) {
    use rdkafka::consumer::Consumer as _;
    for topic in owned.topics() {
        match consumer.fetch_metadata(Some(&topic), Duration::from_secs(2)) {
            Ok(md) => {
                let n = md.topics().iter().map(|t| t.partitions().len()).sum();
                if n > 0 {
                    owned.partitions(&topic, n);
                }
            }
            Err(e) => {
                tracing::warn!(topic, error = %e, "partitions of the topic unknown; the rate share waits for them")
            }
        }
    }
}
