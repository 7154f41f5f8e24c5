//! The at-least-once source both roles read their input through. It owns what makes a consumed
//! record count as done only once its work is: a ticket per record with the generation of its
//! partition's assignment, the fence between assignments, the offsets stored over the contiguous
//! completed prefix, client-side gaps read again, records set aside, the reasons a partition is
//! paused, and what a rebalance means for work in flight. The loop (`run`) drives it; a role plugs
//! its domain in through [`Work`].
//!
//! Nothing here knows Kafka beyond [`Input`]: the tests drive it with a fake consumer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rdkafka::message::{Message, OwnedMessage};

mod aside;
mod done;
mod fence;
mod gaps;
mod kafka;
mod offsets;
mod pauses;
mod progress;
mod rebalance;
mod run;
pub mod saved;
mod waiting;

pub use aside::{share, HELD_OFFSETS_MAX};
pub use kafka::{consume, Subscription};
use run::{run, Parts};

use aside::Aside;
use fence::{Arrival, Fence};
use gaps::{Gap, Gaps};
use pauses::Pauses;
use waiting::Waiting;

/// A partition of the input: (index into the source's topics, partition).
pub type Tp = (usize, i32);

/// One record's claim to be stored once its work is done. `generation` tells apart a delivery made
/// under an earlier assignment of the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    pub tp: Tp,
    pub offset: i64,
    pub generation: u64,
}

/// What the source asks of a consumer (rdkafka's, or a fake in the tests).
pub trait Input: Send + Sync + 'static {
    /// Stores `offset` as the last done of the partition (the next commit resumes after it), with
    /// the metadata that commit carries (the offsets done past it, see `done.rs`).
    fn store(&self, topic: &str, partition: i32, offset: i64, metadata: &str) -> anyhow::Result<()>;
    /// Reads the partition again from `offset`.
    fn seek(&self, topic: &str, partition: i32, offset: i64) -> anyhow::Result<()>;
    fn pause(&self, partitions: &[(&str, i32)], pause: bool) -> anyhow::Result<()>;
    /// Commits what is stored, before the consumer goes.
    fn commit(&self) -> anyhow::Result<()>;
    /// Commits, per (topic, partition), the offset to resume at with the metadata naming the
    /// offsets done past it (asynchronously: a commit lost is made again a second later).
    fn commit_progress(&self, progress: &[(&str, i32, i64, String)]) -> anyhow::Result<()>;
    /// Saves a partition's progress too long for a commit's metadata (see `saved.rs`).
    fn save(&self, topic: &str, partition: i32, text: String) -> saved::Saving;
}

/// A consumer the loop receives records from.
pub trait Receive: Input {
    fn recv(&self) -> impl std::future::Future<Output = anyhow::Result<OwnedMessage>> + Send;
}

/// A role's domain, as the loop sees it. Each method runs on the loop's task.
pub trait Work {
    /// What the role's tasks report back on the loop's channel.
    type Report: Send + 'static;
    /// The role, in the loop's logs.
    const ROLE: &'static str;

    /// A record to work on, new to this replica. Its work ends in [`Source::complete`].
    fn record(&mut self, src: &mut Source, t: Ticket, m: &OwnedMessage) -> anyhow::Result<()>;
    /// A task reported back. An error stops the loop (the record stays unstored).
    fn report(&mut self, src: &mut Source, r: Self::Report) -> anyhow::Result<()>;
    /// Whether `t`'s work is held here (in flight or waiting): a redelivery of it is ignored.
    fn holds(&self, t: &Ticket) -> bool;
    /// `tp` was revoked or assigned afresh: forget its records held and not started, and give
    /// back their offsets (they are read again).
    fn release(&mut self, tp: Tp) -> Vec<i64>;
    /// `tp` went to another replica, which replays what was not stored: drop its work here.
    fn abandon(&mut self, tp: Tp);
    /// Partitions were revoked (after [`Work::release`] of each).
    fn revoked(&mut self, _src: &mut Source) {}
    /// Partitions were assigned (after [`Work::abandon`] of those that went elsewhere).
    fn assigned(&mut self, _src: &mut Source) {}
    /// When [`Work::timer`] should run next.
    fn deadline(&self) -> Option<tokio::time::Instant>;
    fn timer(&mut self, src: &mut Source);
    /// After every turn of the loop: backpressure.
    fn turn(&mut self, src: &mut Source);
    /// Records whose work is not done; in shutdown the loop ends when none is left.
    fn in_flight(&self) -> usize;
    /// Shutdown began: no more records come; finish (or flush) what is held.
    fn shutdown(&mut self, src: &mut Source);
    /// The loop ended: flush what is still queued for Kafka.
    fn closed(&mut self);
}

/// The source's state, owned by the loop and lent to the role.
pub struct Source {
    input: Arc<dyn Input>,
    topics: Vec<String>,
    fence: Fence<Tp>,
    gaps: Gaps<Tp>,
    aside: Aside<Tp>,
    assigned: HashSet<Tp>,
    /// Partitions revoked by the rebalance under way: those not assigned again went elsewhere.
    revoked: Vec<Tp>,
    pauses: Pauses,
    /// Records taken while the role was full, not received yet.
    waiting: Waiting,
    /// Per partition, the save of its progress under way and the last one made (`progress.rs`).
    saves: HashMap<Tp, progress::Save>,
    /// Partitions whose contiguous done prefix moved since the last [`Source::store_moved`], with
    /// its last offset: stored once per turn of the loop, however many records completed in it.
    moved: Vec<(Tp, i64)>,
}

impl Source {
    pub fn new(input: Arc<dyn Input>, topics: Vec<String>) -> Source {
        Source {
            input,
            topics,
            fence: Fence::default(),
            gaps: Gaps::new(),
            aside: Aside::default(),
            assigned: HashSet::new(),
            revoked: Vec::new(),
            pauses: Pauses::default(),
            waiting: Waiting::default(),
            saves: HashMap::new(),
            moved: Vec::new(),
        }
    }

    pub fn topic(&self, tp: Tp) -> &str {
        &self.topics[tp.0]
    }

    /// The partition `partition` of `topic`, if the source reads that topic.
    fn tp(&self, topic: &str, partition: i32) -> Option<Tp> {
        let t = self.topics.iter().position(|t| t == topic)?;
        Some((t, partition))
    }

    /// A record taken from the consumer: received now, or kept to wait while the role is full or
    /// records taken before it wait (`waiting.rs`).
    pub fn take<W: Work>(&mut self, work: &mut W, m: OwnedMessage) -> anyhow::Result<()> {
        if !self.paused() && self.waiting.is_empty() {
            return self.receive(work, &m);
        }
        if let Some(tp) = self.tp(m.topic(), m.partition()) {
            self.waiting.push(tp, m, self.paused());
        }
        Ok(())
    }

    /// Whether a record waits and the role has room for it.
    pub fn has_waiting(&self) -> bool {
        !self.paused() && !self.waiting.is_empty()
    }

    /// Receives the first record waiting, if any.
    pub fn receive_waiting<W: Work>(&mut self, work: &mut W) -> anyhow::Result<()> {
        match self.waiting.pop() {
            Some(m) => self.receive(work, &m),
            None => Ok(()),
        }
    }

    /// A record arrived. It goes to the role's [`Work::record`] unless it is a gap's first sign
    /// (read again), a redelivery of work held here, or work done or adopted from an earlier
    /// assignment of its partition.
    pub fn receive<W: Work>(&mut self, work: &mut W, m: &OwnedMessage) -> anyhow::Result<()> {
        let Some(tp) = self.tp(m.topic(), m.partition()) else {
            return Ok(());
        };
        let offset = m.offset();
        let ticket = Ticket {
            tp,
            offset,
            generation: self.fence.generation(tp),
        };
        // Every delivery counts for gaps, a redelivery of work in flight too.
        if self.read_gap_again(tp, offset) {
            return Ok(());
        }
        self.aside.arrived(tp, offset);
        if work.holds(&ticket) {
            tracing::debug!(
                role = W::ROLE,
                partition = tp.1,
                offset,
                "redelivered while held; ignored"
            );
            return Ok(());
        }
        match self.fence.arrive(tp, offset) {
            Arrival::New(_) => work.record(self, ticket, m),
            // Work this replica did or does under an earlier assignment of the partition.
            Arrival::Adopted => Ok(()),
            Arrival::Done(stored) => {
                self.store(tp, stored);
                Ok(())
            }
        }
    }

    /// The work of `t` is done (its every output acknowledged): its offset is stored at the end of
    /// the turn ([`Source::store_moved`]) if the contiguous prefix moved and the partition is still
    /// ours, or ours again.
    pub fn complete(&mut self, t: Ticket) {
        let Some(last) = self.fence.complete(t.tp, t.offset, t.generation) else {
            return;
        };
        match self.moved.iter_mut().find(|(tp, _)| *tp == t.tp) {
            Some((_, l)) => *l = (*l).max(last),
            None => self.moved.push((t.tp, last)),
        }
    }

    /// Stores, with its metadata, the offset of each partition whose prefix moved since the last
    /// call: at the end of each turn of the loop, before a rebalance and before the final commit.
    /// Encoding the metadata once per turn rather than once per record was a tenth of the loop.
    pub fn store_moved(&mut self) {
        for (tp, last) in std::mem::take(&mut self.moved) {
            self.store(tp, Some(last));
        }
    }

    fn store(&self, tp: Tp, last: Option<i64>) {
        let Some(last) = last else { return };
        let metadata = self.metadata(tp);
        if let Err(e) = self.input.store(self.topic(tp), tp.1, last, &metadata) {
            tracing::debug!(partition = tp.1, error = %e, "offset not stored (partition revoked?)");
        }
    }

    /// Reads `tp` again from `from`: the records of it waiting come again too.
    fn seek(&mut self, tp: Tp, from: i64) -> anyhow::Result<()> {
        self.input.seek(self.topic(tp), tp.1, from)?;
        self.waiting.forget(tp);
        Ok(())
    }

    /// At a partition's first gap, seeks back to the first missing offset: the record is dropped, it
    /// comes again. A seek that fails leaves the gap as it is (logged), and the record is processed.
    fn read_gap_again(&mut self, tp: Tp, offset: i64) -> bool {
        let gap = self.gaps.check(tp, offset);
        let partition = tp.1;
        match gap {
            Gap::None => false,
            Gap::ReadAgain { from } => {
                let topic = self.topic(tp);
                tracing::warn!(
                    topic,
                    partition,
                    from,
                    offset,
                    "offset gap in the input: reading it again"
                );
                match self.seek(tp, from) {
                    Ok(()) => true,
                    Err(e) => {
                        let topic = self.topic(tp);
                        tracing::error!(topic, partition, from, offset, error = %e,
                            "offset gap in the input: cannot read it again, going on past it");
                        false
                    }
                }
            }
            Gap::Real { prev } => {
                tracing::warn!(
                    topic = self.topic(tp),
                    partition,
                    prev,
                    offset,
                    "offset gap in the input, read twice: nothing there"
                );
                false
            }
        }
    }

    /// Sets `t`'s record aside: dropped unprocessed, its offset left unstored (so its partition's
    /// commits wait), read again by [`Source::read_aside_again`] once `workspace` has room.
    pub fn set_aside(&mut self, t: Ticket, workspace: &str) {
        self.aside.set_aside(t.tp, t.offset, workspace);
    }

    /// Seeks back the partitions whose records set aside may go on now: every workspace they
    /// belong to `has_room`.
    pub fn read_aside_again(&mut self, has_room: impl Fn(&str) -> bool) {
        for (tp, from) in self.aside.due(has_room, std::time::Instant::now()) {
            tracing::info!(partition = tp.1, from, "reading records set aside again");
            if let Err(e) = self.seek(tp, from) {
                // Sought again in a while (`Aside::due`); a revocation gives the offsets back.
                tracing::warn!(partition = tp.1, from, error = %e, "cannot read records set aside again yet");
            }
        }
    }

    /// The offset a commit of `tp` resumes at: every offset below it is done.
    pub fn stored(&self, tp: Tp) -> Option<i64> {
        self.fence.stored(tp)
    }

    /// Offsets received and not yet stored (records set aside hold every offset after them).
    pub fn held_offsets(&self) -> usize {
        self.fence.in_flight()
    }
}

#[cfg(test)]
mod tests;
