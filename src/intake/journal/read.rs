//! Reading the journal: blocking librdkafka calls, run off the runtime, through one consumer kept
//! for the replica's life (a read is a few records: a new connection each time would cost more).
//! It is assigned (never subscribed) and never commits; no partition list outlives a call (a list
//! alive when a consumer is dropped hangs the drop, see `docs/testing.md`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use uuid::Uuid;

use super::Entry;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Reader {
    config: ClientConfig,
    /// Created at the first read; dropped after an error, and made again at the next.
    consumer: Arc<Mutex<Option<BaseConsumer>>>,
}

impl Reader {
    pub fn new(config: ClientConfig) -> Reader {
        Reader {
            config,
            consumer: Arc::default(),
        }
    }

    /// Runs `f` with the consumer (blocking: call it off the runtime).
    fn with<T>(&self, f: impl FnOnce(&BaseConsumer) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut slot = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(self.config.create()?);
        }
        let result = f(slot.as_ref().expect("created above"));
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// The partition count of `topic`.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<i32> {
        self.with(|consumer| {
            let md = consumer.fetch_metadata(Some(topic), CALL_TIMEOUT)?;
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            if n == 0 {
                bail!("the journal topic {topic} has no partitions (does it exist?)");
            }
            Ok(i32::try_from(n)?)
        })
    }

    /// Reads partition `p` of `topic` from `from` to its end as it was when the read began: the
    /// next offset to read, and the entries whose key starts with `prefix` (then the input offset),
    /// but those of runs that are `ours` (not parsed past their run). The end is the high watermark,
    /// which must count every record acknowledged: a record missed here is an id a replay does not
    /// name (the test broker needs `scripts/tansu-list-offsets-latest.patch` for that).
    pub fn entries(
        &self,
        topic: &str,
        p: i32,
        from: i64,
        prefix: &str,
        within: Duration,
        ours: &dyn Fn(&Uuid) -> bool,
    ) -> anyhow::Result<(i64, Vec<(i64, Entry)>)> {
        self.with(|consumer| {
            let (low, high) = consumer.fetch_watermarks(topic, p, CALL_TIMEOUT)?;
            let mut next = from.max(low);
            let mut out = Vec::new();
            if next >= high {
                return Ok((next, out));
            }
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(topic, p, Offset::Offset(next))?;
            consumer.assign(&assignment)?;
            drop(assignment);
            let deadline = Instant::now() + within;
            while next < high {
                if Instant::now() > deadline {
                    bail!("the journal partition {p} was not read to offset {high} within {within:?}");
                }
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let m = m.context("reading the journal")?;
                next = m.offset() + 1;
                if let Some(e) = entry(&m, prefix, ours) {
                    out.push(e);
                }
            }
            // No fetch stays in flight between reads: the broker answers a connection's requests
            // in order, and the next read's watermark request would wait behind it.
            consumer.unassign()?;
            Ok((next, out))
        })
    }
}

/// The input offset and entry of a journal record whose key starts with `prefix`, unless `ours`.
fn entry(
    m: &rdkafka::message::BorrowedMessage<'_>,
    prefix: &str,
    ours: &dyn Fn(&Uuid) -> bool,
) -> Option<(i64, Entry)> {
    let key = std::str::from_utf8(m.key()?).ok()?;
    let offset = key.strip_prefix(prefix)?.parse::<i64>().ok()?;
    match parse(m.payload().unwrap_or_default(), ours) {
        Ok(e) => Some((offset, e?)),
        Err(e) => {
            tracing::warn!(offset = m.offset(), error = %e, "a journal record that does not parse is skipped");
            None
        }
    }
}

/// The entry in `payload`, or none when its run is `ours`: its page of ids is then never built.
pub(super) fn parse(payload: &[u8], ours: &dyn Fn(&Uuid) -> bool) -> serde_json::Result<Option<Entry>> {
    #[derive(serde::Deserialize)]
    struct Run {
        #[serde(default)]
        run: Uuid,
    }
    let Run { run } = serde_json::from_slice(payload)?;
    if ours(&run) {
        return Ok(None);
    }
    serde_json::from_slice(payload).map(Some)
}
