//! The progress topic: a partition's offsets done past its committed one, saved whole when they do
//! not fit in a commit's metadata (see `done.rs`). Behind a workspace cut off for a minute, a
//! partition's window past the committed offset grows to tens of thousands of offsets, and without
//! this a replica that dies then makes the next owner redo all of it.
//!
//! A record is keyed `{group}/{topic}/{partition}` and holds the same text as the metadata, with no
//! size limit but [`SAVED_MAX_BYTES`]: offsets only, never a record's content. The owner saves
//! afresh each second while the window does not fit; the commit names the last record Kafka
//! acknowledged. The next owner reads that record as the partition is assigned, checks its key, and
//! redoes what it cannot read (a record gone with the topic's retention, a read that times out).
//!
//! [`SAVED_MAX_BYTES`]: super::done::SAVED_MAX_BYTES

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::done;

/// A save under way: resolves to where the record went, `(partition, offset)`, or `None`.
pub type Saving = Pin<Box<dyn Future<Output = Option<(i32, i64)>> + Send>>;

/// How long a save may wait for Kafka, and a read at an assignment for its record.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Saved {
    topic: String,
    group: String,
    producer: FutureProducer,
    reader: ClientConfig,
    /// Made at the first read; dropped after an error, and made again at the next.
    consumer: Mutex<Option<BaseConsumer>>,
}

impl Saved {
    /// Saves on `topic` for the consumer group `group`; `client` is the cluster's config.
    pub fn new(client: &ClientConfig, topic: &str, group: &str) -> anyhow::Result<Saved> {
        // Not idempotent: a record written twice is harmless, and an idempotent producer can be
        // fenced for good (seen against the test broker: `ProducerFenced`, then every save failed).
        let mut producer = client.clone();
        producer
            .set("enable.idempotence", "false")
            .set("acks", "all")
            .set("message.timeout.ms", "5000");
        let mut reader = client.clone();
        reader
            .set("group.id", format!("{group}.progress-reader"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10");
        Ok(Saved {
            topic: topic.to_owned(),
            group: group.to_owned(),
            producer: producer.create().context("creating the progress producer")?,
            reader,
            consumer: Mutex::new(None),
        })
    }

    fn key(&self, topic: &str, partition: i32) -> String {
        format!("{}/{topic}/{partition}", self.group)
    }

    /// Saves `text`, the progress of `partition` of `topic`.
    pub fn save(&self, topic: &str, partition: i32, text: String) -> Saving {
        let (producer, key, to) = (self.producer.clone(), self.key(topic, partition), self.topic.clone());
        Box::pin(async move {
            let record = FutureRecord::to(&to).key(&key).payload(&text);
            match producer.send(record, Timeout::After(TIMEOUT)).await {
                Ok(d) => Some((d.partition, d.offset)),
                Err((e, _)) => {
                    tracing::warn!(topic = to, error = %e, "progress not saved: a new owner would redo what the commit's metadata cannot name");
                    None
                }
            }
        })
    }

    /// `metadata`, committed for `partition` of `topic`, with the record it names read in place
    /// of where it is (blocking: the rebalance callback runs it). Unchanged when it names none, or
    /// the record cannot be read.
    pub fn load(&self, topic: &str, partition: i32, metadata: String) -> String {
        let Some((p, offset)) = done::saved_at(&metadata) else {
            return metadata;
        };
        let mut slot = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        let read = match slot.as_ref() {
            Some(c) => Ok(c),
            None => self.reader.create().map(|c| &*slot.insert(c)),
        }
        .map_err(anyhow::Error::from)
        .and_then(|c| self.read(c, p, offset, &self.key(topic, partition)));
        match read {
            Ok(record) => {
                tracing::info!(partition, bytes = record.len(), "progress saved by the last owner read");
                done::with_saved(&metadata, &record)
            }
            Err(e) => {
                *slot = None;
                tracing::warn!(partition, error = %e, "saved progress not read: what the last owner did past the committed offset is done again");
                metadata
            }
        }
    }

    /// The record at `offset` of partition `p` of the progress topic, if its key is `key`.
    fn read(&self, consumer: &BaseConsumer, p: i32, offset: i64, key: &str) -> anyhow::Result<String> {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, p, Offset::Offset(offset))?;
        consumer.assign(&assignment)?;
        drop(assignment);
        let deadline = Instant::now() + TIMEOUT;
        let m = loop {
            if Instant::now() > deadline {
                bail!(
                    "record {offset} of partition {p} of {} not read within {TIMEOUT:?}",
                    self.topic
                );
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => break m,
                // The broker's connections come and go (seen: all brokers down, for a moment,
                // while they were being reset): read on until the deadline.
                Some(Err(e)) => tracing::debug!(error = %e, "reading the saved progress; trying on"),
                None => {}
            }
        };
        let found = (m.offset(), m.key().map(<[u8]>::to_vec));
        let payload = m.payload().map(<[u8]>::to_vec).unwrap_or_default();
        drop(m);
        consumer.unassign()?;
        if found != (offset, Some(key.as_bytes().to_vec())) {
            bail!(
                "record {offset} of partition {p} of {} is gone or another's",
                self.topic
            );
        }
        Ok(String::from_utf8(payload)?)
    }
}
