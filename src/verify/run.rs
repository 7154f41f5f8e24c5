//! The verifier loop: one task owns the consumer, the parked partition heads and the offsets;
//! checks run as tasks and report back. An offset is stored only once its outcome is acknowledged.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::TopicPartitionList;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

mod pressure;
mod tasks;

use super::parked::{Offer, Parked};
use super::Verifier;
use crate::event::{self, DeletionRequested};
use crate::fence::{Arrival, Fence};
use crate::gaps::Gaps;
use crate::kafka::{Assignment, RebalanceReporter};
use crate::publish::PublishError;

type Consumer_ = StreamConsumer<RebalanceReporter>;
/// (index into the two input topics, partition).
type Tp = (usize, i32);

/// One input record; `generation` tells apart a replay after the partition was re-assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    tp: Tp,
    offset: i64,
    generation: u64,
}

/// Checks allowed in flight per permit of `max_concurrent_checks` (1,024 by default; a check in
/// flight holds one part). Each pause and resume costs about a second before records flow again
/// (measured against Tansu): at 4 per permit the verifier managed 64 parts/s however high the query
/// limits (`scripts/bench verify-backlog`), at 64 per permit 1,007.
const IN_FLIGHT_PER_CHECK: usize = 64;

/// What the metrics need to know of a part held unverified.
#[derive(Clone, Copy)]
struct Held {
    accepted_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
}

struct State {
    v: Arc<Verifier>,
    topics: [String; 2],
    assigned: HashSet<Tp>,
    gaps: Gaps<Tp>,
    fence: Fence<Tp>,
    /// Partition heads not due yet, and the records behind them; their partitions are paused.
    parked: Parked<Tp, (Key, DeletionRequested)>,
    /// Checks (and dead-letterings, with no `Held`) not finished yet.
    in_flight: HashMap<Key, Option<Held>>,
    /// Every partition paused because too many checks are in flight.
    throttled: bool,
    /// `max_concurrent_checks` per workspace, so a workspace whose checks never return holds only
    /// its own parts.
    checks: HashMap<String, Arc<Semaphore>>,
    /// Set for a check whose partition went to another replica: it publishes nothing.
    cancels: HashMap<Key, Arc<AtomicBool>>,
    /// Partitions revoked by the rebalance under way: those not assigned again went elsewhere.
    revoked: Vec<Tp>,
    done: mpsc::Sender<(Key, Result<(), PublishError>)>,
}

pub async fn run(v: Arc<Verifier>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let cfg = &v.config;
    let topics = [cfg.topics.deletion_requested.clone(), cfg.topics.recheck.clone()];
    let (assign_tx, mut assignments) = mpsc::unbounded_channel();
    let consumer: Consumer_ = crate::kafka::consumer_config(cfg, &cfg.kafka.verifier_group, &[])
        .create_with_context(RebalanceReporter::new(
            assign_tx,
            v.metrics.clone(),
            Some(v.metrics.pending_verifications.clone()),
        ))
        .context("creating the verifier consumer")?;
    consumer
        .subscribe(&[&topics[0], &topics[1]])
        .context("subscribing to the deletion-requested and recheck topics")?;
    let (done_tx, mut done_rx) = mpsc::channel(1024);
    let mut st = State {
        checks: (cfg.workspaces.keys())
            .map(|w| (w.clone(), Arc::new(Semaphore::new(cfg.verifier.max_concurrent_checks))))
            .collect(),
        cancels: HashMap::new(),
        revoked: Vec::new(),
        v: v.clone(),
        topics,
        assigned: HashSet::new(),
        gaps: Gaps::new(),
        fence: Fence::default(),
        parked: Parked::new(),
        in_flight: HashMap::new(),
        throttled: false,
        done: done_tx,
    };
    tokio::pin!(shutdown);
    let mut grace: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let result = loop {
        if grace.is_some() && st.in_flight.is_empty() {
            break Ok(());
        }
        let due = st.next_due();
        tokio::select! {
            biased;
            _ = &mut shutdown, if grace.is_none() => {
                tracing::info!(checks = st.in_flight.len(), "verifier shutting down: finishing checks in flight");
                grace = Some(Instant::now() + cfg.intake.shutdown_grace);
                st.parked.clear();
            }
            _ = crate::until::sleep_until(grace) => {
                tracing::warn!(checks = st.in_flight.len(), "shutdown grace elapsed: unfinished checks will be replayed");
                break Ok(());
            }
            Some(a) = assignments.recv() => st.on_assignment(&consumer, a),
            Some((key, sent)) = done_rx.recv() => if let Err(e) = st.on_done(&consumer, key, sent) {
                break Err(e);
            },
            _ = crate::until::sleep_until(due), if grace.is_none() => st.wake(&consumer),
            _ = tick.tick() => st.update_gauges(),
            m = consumer.recv(), if grace.is_none() => match m {
                Ok(m) => {
                    while let Ok(a) = assignments.try_recv() {
                        st.on_assignment(&consumer, a);
                    }
                    st.on_message(&consumer, &m);
                }
                Err(e) => tracing::warn!(error = %e, "consumer error"),
            },
        }
        st.backpressure(&consumer);
    };
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit (nothing stored since the last one?)");
    }
    v.publisher.flush(Duration::from_secs(5));
    tokio::task::spawn_blocking(move || drop(consumer)).await.ok();
    result
}

impl State {
    fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|t| t == name)
    }

    /// Pauses or resumes these partitions.
    fn set_paused(&self, consumer: &Consumer_, tps: &[Tp], pause: bool) {
        if tps.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p) in tps {
            tpl.add_partition(&self.topics[*t], *p);
        }
        let result = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, pause, "pausing/resuming verifier partitions failed");
        }
    }

    fn on_assignment(&mut self, consumer: &Consumer_, a: Assignment) {
        match a {
            Assignment::Assigned(parts) => {
                tracing::info!(?parts, "verifier partitions assigned");
                let mut tps = Vec::new();
                for (topic, p) in parts {
                    let Some(t) = self.topic_index(&topic) else { continue };
                    self.forget((t, p));
                    self.fence.assign((t, p));
                    self.assigned.insert((t, p));
                    tps.push((t, p));
                }
                let moved = std::mem::take(&mut self.revoked);
                for tp in moved.into_iter().filter(|tp| !tps.contains(tp)) {
                    self.abandon(tp);
                }
                // A partition paused before a rebalance must not stay paused with no head to wait on.
                self.set_paused(consumer, &tps, self.throttled);
            }
            Assignment::Revoked(parts) => {
                tracing::info!(
                    ?parts,
                    "verifier partitions revoked: checks in flight go on, and are replayed if another replica gets them"
                );
                for (topic, p) in parts {
                    let Some(t) = self.topic_index(&topic) else { continue };
                    self.forget((t, p));
                    self.revoked.push((t, p));
                }
            }
        }
    }

    fn on_message(&mut self, consumer: &Consumer_, m: &BorrowedMessage<'_>) {
        let Some(t) = self.topic_index(m.topic()) else { return };
        let tp = (t, m.partition());
        let key = Key {
            tp,
            offset: m.offset(),
            generation: self.fence.generation(tp),
        };
        // Every delivery counts for gaps, a redelivery of work in flight too.
        if crate::gaps::read_again(&mut self.gaps, consumer, m, tp) {
            return;
        }
        if self.in_flight.contains_key(&key) || self.parked.of(&tp).any(|(k, _)| *k == key) {
            return;
        }
        match self.fence.arrive(tp, key.offset) {
            Arrival::New(_) => {}
            // A check this replica did or does under an earlier assignment of the partition.
            Arrival::Adopted => return,
            Arrival::Done(stored) => return self.store(consumer, tp, stored),
        }
        let part = event::decode::<DeletionRequested>(event::DELETION_REQUESTED_TYPE, m.payload());
        match part {
            // Config drift between replicas: the part still ends, in an event an auditor sees.
            Ok(part) if !self.v.clients.contains_key(&part.workspace) => self.unknown_workspace(key, part),
            Ok(part) => match self.parked.offer(
                tp,
                super::check::due(&self.v.config.window, &part, m),
                (key, part),
                Utc::now(),
            ) {
                Offer::Now((key, part)) => self.start(key, part),
                // Not due: its partition waits until it is.
                Offer::Head => self.set_paused(consumer, &[tp], true),
                Offer::Behind => {}
            },
            Err(why) => self.dead_letter(key, m, why),
        }
    }

    /// The earliest due time of a parked head.
    fn next_due(&self) -> Option<Instant> {
        let due = self.parked.next_due()?;
        let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Some(Instant::now() + wait)
    }

    /// Starts the checks of the parked records that are due, in order, and resumes the partitions
    /// with none left waiting.
    fn wake(&mut self, consumer: &Consumer_) {
        let (due, resumed) = self.parked.take_due(Utc::now());
        for (key, part) in due {
            self.start(key, part);
        }
        if !self.throttled {
            self.set_paused(consumer, &resumed, false);
        }
    }

    /// A check's outcome is acknowledged: store the offset if the contiguous prefix moved.
    /// An outcome that Kafka will never take stops the worker, loudly, with its offset unstored.
    fn on_done(&mut self, consumer: &Consumer_, key: Key, sent: Result<(), PublishError>) -> anyhow::Result<()> {
        self.in_flight.remove(&key);
        self.cancels.remove(&key);
        if let Err(e) = sent {
            anyhow::bail!(
                "an outcome of the record at {} partition {} offset {} was not published ({e}); stopping, \
                 so that it is checked again once the cause is mended",
                self.topics[key.tp.0],
                key.tp.1,
                key.offset
            );
        }
        let last = self.fence.complete(key.tp, key.offset, key.generation);
        self.store(consumer, key.tp, last);
        Ok(())
    }

    fn store(&self, consumer: &Consumer_, tp: Tp, last: Option<i64>) {
        let Some(last) = last else { return };
        if let Err(e) = consumer.store_offset(&self.topics[tp.0], tp.1, last) {
            tracing::debug!(partition = tp.1, error = %e, "offset not stored (partition revoked?)");
        }
    }

    /// `tp` is not ours any more (or is ours afresh): its parked records are dropped (redelivered,
    /// they are parked again), its checks in flight go on.
    fn forget(&mut self, tp: Tp) {
        let dropped: Vec<i64> = self.parked.of(&tp).map(|(k, _)| k.offset).collect();
        self.parked.remove(&tp);
        self.fence.revoke(tp, &dropped);
        self.gaps.forget(&tp);
        self.assigned.remove(&tp);
    }
}
