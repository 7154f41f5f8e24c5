//! The resolution journal: what a request's selectors resolved to (trace ids per project, per
//! target) and the dataset examples they reached, recorded on `topics.resolutions` before any of
//! it is deleted. A replica that dies between the deletes and Kafka's acknowledgement of their
//! events leaves the input event unstored; its replay searches again, and finds nothing once the
//! deletes took effect (examples at once, traces after the deletion window). The replay reads the
//! record back instead, so its events still name every id erased: the audit trail is the proof.
//!
//! - A record per page (at most 1,000 ids), keyed `{input topic}/{partition}/{offset}`, holds ids
//!   and the request id only: never a selector's metadata, which is personal data.
//! - It goes to journal partition `partition % n`, so the owner of an input partition reads one
//!   journal partition: from its start the first time, then only what was added (`read.rs`).
//! - Records of offsets below the partition's stored offset are dropped from memory: their events
//!   were acknowledged, so the proof is on the output topics already.
//! - Records of runs going on in this replica are not kept, nor parsed past their run: a run needs
//!   only what runs elsewhere recorded (a selector's own pages would all be held again, as read).
//!   A run belongs to the cache of the partition's ownership its event arrived in; once the
//!   partition went elsewhere, it reads nothing more, and a later ownership here reads its records.
//! - A replay hands on the union of the records and a fresh search: a record cut short by a crash
//!   lacks only ids whose deletes were never sent, which the fresh search still finds. The journal
//!   is read again after the search: an id another run deleted while this one searched (a replica
//!   still working on a partition it lost) was recorded before that delete, so that read has it.

mod read;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::backoff::backoff;
use crate::config::Config;
use crate::publish::{Publisher, Record};
use crate::source::Ticket;

/// One record: a page of a selector's traces (`target` is its index in the request), or examples
/// about to be hard-deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub request_id: String,
    /// The run of the event that made it (a run does not recall its own records).
    pub run: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<usize>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub traces: BTreeMap<Uuid, BTreeSet<Uuid>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Uuid>,
}

/// What earlier runs of an event recorded.
#[derive(Debug, Default, PartialEq)]
pub struct Recalled {
    /// Per target index: trace ids per project.
    pub traces: HashMap<usize, BTreeMap<Uuid, BTreeSet<Uuid>>>,
    pub examples: BTreeSet<Uuid>,
}

impl Recalled {
    fn add(&mut self, e: &Entry) {
        if let Some(target) = e.target {
            let traces = self.traces.entry(target).or_default();
            for (session, ids) in &e.traces {
                traces.entry(*session).or_default().extend(ids.iter().copied());
            }
        }
        self.examples.extend(e.examples.iter().copied());
    }
}

/// One input partition's records as this replica knows them.
#[derive(Default)]
struct Cache {
    /// The runs of its events going on here, begun since the partition came: their records are not
    /// kept. A run needs what runs elsewhere recorded (a replica that had the partition before),
    /// never what runs here did, which publish their own events; and a run begun before the
    /// partition left is elsewhere to the new cache made when it comes back, read from the start.
    own: Mutex<HashSet<Uuid>>,
    loaded: tokio::sync::Mutex<Loaded>,
}

/// What this replica has read of one input partition's records.
#[derive(Default)]
struct Loaded {
    /// When the last read began: one that began after a run asked serves it too.
    read_at: Option<Instant>,
    /// The next journal offset to read.
    next: i64,
    /// Input offset → its records, in the order read.
    entries: BTreeMap<i64, Vec<Entry>>,
}

/// A run of an event asking for the records of other runs: those from the `skip`th on.
struct Ask<'a> {
    ticket: Ticket,
    /// The partition's stored offset when the event arrived: what is below it is not needed.
    floor: Option<i64>,
    request_id: &'a str,
    run: Uuid,
    skip: usize,
}

pub struct Journal {
    publisher: Publisher,
    reader: read::Reader,
    topic: String,
    /// The input topic (the intake reads one).
    input: String,
    /// The journal's partition count, read once.
    partitions: OnceCell<i32>,
    caches: Mutex<HashMap<i32, Arc<Cache>>>,
}

/// The key of the records of the event at `offset` of `partition` of the input topic `input`.
pub fn key(input: &str, partition: i32, offset: i64) -> String {
    format!("{}{offset}", prefix(input, partition))
}

/// What the keys of a partition's records start with.
fn prefix(input: &str, partition: i32) -> String {
    format!("{input}/{partition}/")
}

/// How long one read of a journal partition may take before it is tried again.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Journal {
    pub fn new(config: &Config, publisher: Publisher) -> Journal {
        let mut reader = crate::kafka::configured(config, &[]);
        reader
            .set("group.id", format!("{}.journal-reader", config.kafka.intake_group))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A read stops at the end it knows: a fetch waiting at the end for more only delays it.
            .set("fetch.wait.max.ms", "10");
        Journal {
            publisher,
            reader: read::Reader::new(reader),
            topic: config.topics.resolutions.clone(),
            input: config.topics.requests.clone(),
            partitions: OnceCell::new(),
            caches: Mutex::default(),
        }
    }

    /// The journal partition of input partition `p`.
    async fn partition(&self, p: i32) -> i32 {
        let n = self
            .partitions
            .get_or_init(|| async {
                let (reader, topic) = (self.reader.clone(), self.topic.clone());
                retry("counting the journal's partitions", move || reader.partitions(&topic)).await
            })
            .await;
        p % n.max(&1)
    }

    /// Reads what was added to the journal of the asking event's partition (unless a read began
    /// after the ask: runs asking together share a read), then returns what runs other than the
    /// asking one recorded for its request, from the `skip`th record of its offset on, and where
    /// the next ask starts. Records below the floor are dropped first.
    ///
    /// `cache` is the one of the run's partition when its event arrived. Once the partition went
    /// elsewhere, the run's pieces are dropped and its event is replayed: nothing is read for it.
    /// Reading the cache made since would count the run as that cache's own, or drop what lies
    /// below the run's floor, and a replay here would miss those records.
    async fn recall(&self, cache: &Arc<Cache>, ask: Ask<'_>) -> (Vec<Entry>, usize) {
        let (p, asked) = (ask.ticket.tp.1, Instant::now());
        if !self.is_current(p, cache) {
            return (Vec::new(), ask.skip);
        }
        let mut loaded = cache.loaded.lock().await;
        let floor = ask.floor.unwrap_or(0);
        if loaded.entries.first_key_value().is_some_and(|(o, _)| *o < floor) {
            loaded.entries = loaded.entries.split_off(&floor);
        }
        if loaded.read_at.is_none_or(|at| at < asked) {
            loaded.read_at = Some(Instant::now());
            let jp = self.partition(p).await;
            let prefix = prefix(&self.input, p);
            let (reader, topic, from, mine) = (self.reader.clone(), self.topic.clone(), loaded.next, cache.clone());
            let (next, entries) = retry("reading the resolution journal", move || {
                let ours = |run: &Uuid| mine.own.lock().unwrap_or_else(|e| e.into_inner()).contains(run);
                reader.entries(&topic, jp, from, &prefix, READ_TIMEOUT, &ours)
            })
            .await;
            loaded.next = next;
            for (offset, e) in entries {
                loaded.entries.entry(offset).or_default().push(e);
            }
        }
        let mine = loaded.entries.get(&ask.ticket.offset).map_or(&[][..], Vec::as_slice);
        // A run from before the partition left and came back is not the new cache's own.
        let others = mine.iter().skip(ask.skip).filter(|e| e.run != ask.run);
        let found = others.filter(|e| e.request_id == ask.request_id).cloned().collect();
        (found, mine.len())
    }

    /// Records `entry` for the event at `t`, and returns once Kafka has it.
    pub async fn record(&self, t: Ticket, entry: &Entry) {
        let partition = self.partition(t.tp.1).await;
        let key = key(&self.input, t.tp.1, t.offset);
        let payload = serde_json::to_vec(entry).expect("an entry serializes");
        let record = Record {
            topic: &self.topic,
            key: Some(key.as_bytes()),
            payload: &payload,
            headers: Vec::new(),
            partition: Some(partition),
        };
        if let Err(e) = self.publisher.send(record).await {
            // At most 1,000 ids: far below any record size limit. The deletes go on: without the
            // record, a crash before their events are acknowledged loses only their proof.
            tracing::error!(partition = t.tp.1, offset = t.offset, error = %e, "a resolution could not be recorded");
        }
    }

    /// Input partition `p` went to another replica: what was read of it is dropped (read again,
    /// from the start, if it comes back).
    pub fn forget(&self, p: i32) {
        self.caches.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
    }

    fn cache(&self, p: i32) -> Arc<Cache> {
        let mut all = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(p).or_default().clone()
    }

    /// Whether `cache` is still partition `p`'s (the partition did not go elsewhere since).
    fn is_current(&self, p: i32, cache: &Arc<Cache>) -> bool {
        let all = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        all.get(&p).is_some_and(|c| Arc::ptr_eq(c, cache))
    }
}

/// Runs the blocking Kafka call `f` off the runtime until it succeeds, with backoff: a resolution
/// must not go on without knowing what was recorded.
async fn retry<T: Send + 'static>(what: &str, f: impl Fn() -> anyhow::Result<T> + Send + Sync + 'static) -> T {
    let f = Arc::new(f);
    for attempt in 0.. {
        let g = f.clone();
        match tokio::task::spawn_blocking(move || g()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(e)) => tracing::warn!(attempt, error = %e, "{what} failed; retrying"),
            Err(e) => tracing::warn!(attempt, error = %e, "{what} failed; retrying"),
        }
        tokio::time::sleep(backoff(attempt, Duration::from_millis(200), Duration::from_secs(10))).await;
    }
    unreachable!("the attempts never run out")
}

/// The journal as one run of an event sees it: the records it makes, and what other runs of the
/// event recorded, read afresh at each ask and kept until taken.
pub struct Recorder {
    journal: Arc<Journal>,
    /// The cache of the partition when the run began, which knows the run as its own.
    cache: Arc<Cache>,
    ticket: Ticket,
    floor: Option<i64>,
    request_id: String,
    run: Uuid,
    /// Records of the event's offset looked at so far.
    skip: usize,
    recalled: Recalled,
}

impl Recorder {
    /// A run of the event at `ticket`. Make it when the event arrives, while its partition is this
    /// replica's: made later (after a wait for a permit), it could join the cache of a later
    /// ownership of the partition as that cache's own, and its records would never be read here.
    pub fn new(journal: Arc<Journal>, ticket: Ticket, floor: Option<i64>, request_id: String) -> Recorder {
        let (cache, run) = (journal.cache(ticket.tp.1), Uuid::new_v4());
        cache.own.lock().unwrap_or_else(|e| e.into_inner()).insert(run);
        Recorder {
            journal,
            cache,
            ticket,
            floor,
            request_id,
            run,
            skip: 0,
            recalled: Recalled::default(),
        }
    }

    /// Whether the run's partition is still this replica's since its event arrived. Once it went
    /// elsewhere, the run's pieces are dropped and the new owner replays the event.
    pub fn is_current(&self) -> bool {
        self.journal.is_current(self.ticket.tp.1, &self.cache)
    }

    /// What other runs recorded and was not taken yet, after reading what was added to the journal.
    pub async fn recall(&mut self) -> &mut Recalled {
        let ask = Ask {
            ticket: self.ticket,
            floor: self.floor,
            request_id: &self.request_id,
            run: self.run,
            skip: self.skip,
        };
        let (found, skip) = self.journal.recall(&self.cache, ask).await;
        self.skip = skip;
        if !found.is_empty() {
            tracing::info!(request_id = %self.request_id, partition = self.ticket.tp.1, offset = self.ticket.offset,
                records = found.len(), "a replay: ids another run of the event recorded are named again");
        }
        for e in &found {
            self.recalled.add(e);
        }
        &mut self.recalled
    }

    fn entry(&self) -> Entry {
        Entry {
            request_id: self.request_id.clone(),
            run: self.run,
            ..Entry::default()
        }
    }

    /// Records a page of target `target`'s traces.
    pub async fn traces(&self, target: usize, traces: &BTreeMap<Uuid, BTreeSet<Uuid>>) {
        let entry = Entry {
            target: Some(target),
            traces: traces.clone(),
            ..self.entry()
        };
        self.journal.record(self.ticket, &entry).await;
    }

    /// Records examples about to be hard-deleted.
    pub async fn examples(&self, ids: &[Uuid]) {
        let entry = Entry {
            examples: ids.to_vec(),
            ..self.entry()
        };
        self.journal.record(self.ticket, &entry).await;
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.cache
            .own
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.run);
    }
}

#[cfg(test)]
mod tests;
