//! Why the source's partitions are paused: all of them while the role has been full for a while
//! (backpressure), each on its own while it waits (a verifier partition whose head is not due), and
//! all of them for good once shutdown begins. A partition flows only when none holds it; a new
//! assignment starts in the state the consumer is in.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{Source, Tp};

/// How long the role may be full before its partitions are paused. Until then the loop only stops
/// taking records. A pause makes librdkafka drop the records it has prefetched (up to
/// `queued.max.messages.kbytes`) and fetch them again on resume, a fetch round trip later; under a
/// backlog the intake is full for some tens of milliseconds every second or two, and its loop then
/// ran dry after each of them. Past this, the partitions are paused and the consumer is polled
/// again, so a rebalance waits at most this long to be served.
pub(super) const FULL_BEFORE_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct Pauses {
    /// Since when the role is full (it takes no record).
    full: Option<Instant>,
    /// Every partition paused in the consumer: the role has been full for [`FULL_BEFORE_PAUSE`].
    all: bool,
    /// Partitions paused on their own.
    held: HashSet<Tp>,
    /// Shutting down: every partition stays paused, whatever `all` says.
    closed: bool,
}

impl Source {
    /// Whether the role is full: it takes no record until it says otherwise.
    pub fn paused(&self) -> bool {
        self.pauses.full.is_some()
    }

    /// Whether the loop takes records from the consumer now: not while the role is full and its
    /// partitions are not paused yet. Once they are (or the input is closed), the consumer is
    /// polled again for its rebalances.
    pub fn reading(&self) -> bool {
        self.pauses.full.is_none() || self.pauses.all || self.pauses.closed
    }

    /// The role is full (`pause`) or not, as it says on each turn: once it has been full for
    /// [`FULL_BEFORE_PAUSE`], every partition is paused; when it is not, those not held on their
    /// own are resumed (once the input is closed, only the role's state changes). Returns false
    /// when the consumer refused (the caller tries again on its next turn).
    pub fn pause_all(&mut self, pause: bool) -> bool {
        self.pause_all_at(pause, Instant::now())
    }

    pub(super) fn pause_all_at(&mut self, pause: bool, now: Instant) -> bool {
        match (pause, self.pauses.full) {
            (true, None) => self.pauses.full = Some(now),
            (false, Some(_)) => self.pauses.full = None,
            _ => {}
        }
        let all = self.pauses.full.is_some_and(|since| now >= since + FULL_BEFORE_PAUSE);
        if all == self.pauses.all {
            return true;
        }
        let tps: Vec<Tp> = (self.assigned.iter())
            .filter(|tp| !self.pauses.held.contains(tp))
            .copied()
            .collect();
        if !self.pauses.closed && !self.set_paused(&tps, all) {
            return false;
        }
        self.pauses.all = all;
        true
    }

    /// Shutdown began: every partition is paused for good (those assigned from now on too), so no
    /// record comes that would not be started. The consumer is still polled for its rebalances.
    pub fn close_input(&mut self) {
        let tps: Vec<Tp> = self.assigned.iter().copied().collect();
        self.set_paused(&tps, true);
        self.pauses.closed = true;
    }

    /// Pauses `tp` on its own (until [`Source::release_holds`]), whatever the role's state.
    pub fn hold(&mut self, tp: Tp) {
        if self.pauses.held.insert(tp) && !self.pauses.all {
            self.set_paused(&[tp], true);
        }
    }

    /// `tps` need not wait on their own any more: they flow unless every partition is paused.
    pub fn release_holds(&mut self, tps: &[Tp]) {
        let released: Vec<Tp> = tps.iter().filter(|tp| self.pauses.held.remove(tp)).copied().collect();
        if !self.pauses.all && !self.pauses.closed {
            self.set_paused(&released, false);
        }
    }

    /// `tps` are newly assigned: paused if every partition is, flowing otherwise (a partition
    /// paused before a rebalance must not stay paused with nothing to wait on).
    pub(super) fn start_assigned(&mut self, tps: &[Tp]) {
        for tp in tps {
            self.pauses.held.remove(tp);
        }
        self.set_paused(tps, self.pauses.all || self.pauses.closed);
    }

    pub(super) fn forget_holds(&mut self, tp: Tp) {
        self.pauses.held.remove(&tp);
    }

    fn set_paused(&self, tps: &[Tp], pause: bool) -> bool {
        if tps.is_empty() {
            return true;
        }
        let list: Vec<(&str, i32)> = tps.iter().map(|tp| (self.topic(*tp), tp.1)).collect();
        match self.input.pause(&list, pause) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, pause, "pausing/resuming input partitions failed");
                false
            }
        }
    }
}
