//! Why the source's partitions are paused: all of them while the role is full and took enough records
//! meanwhile (backpressure, see `waiting.rs`), each on its own while it waits (a verifier
//! partition whose head is not due), and all of them for good once shutdown begins. A partition
//! flows only when none holds it; a new assignment starts in the state the consumer is in.

use std::collections::HashSet;

use super::{Source, Tp};

#[derive(Debug, Default)]
pub(super) struct Pauses {
    /// The role is full: records taken from the consumer wait.
    full: bool,
    /// Every partition paused in the consumer: the role is full and took many records meanwhile.
    all: bool,
    /// Partitions paused on their own.
    held: HashSet<Tp>,
    /// Shutting down: every partition stays paused, whatever `all` says.
    closed: bool,
}

impl Source {
    /// Whether the role is full: records it is given wait until it says otherwise.
    pub fn paused(&self) -> bool {
        self.pauses.full
    }

    /// Whether the loop takes records from the consumer now: unless too many wait while the
    /// partitions flow (the role, with room, takes those first; or, full, its pause was refused).
    /// A paused consumer is polled for its rebalances.
    pub fn reading(&self) -> bool {
        if self.pauses.all || self.pauses.closed {
            true
        } else if self.pauses.full {
            !self.waiting.enough_while_full()
        } else {
            !self.waiting.full()
        }
    }

    /// The role is full (`pause`) or not, as it says on each turn. While it is full, records
    /// taken wait (`waiting.rs`), and once it took enough every partition is paused; when it is not,
    /// those not held on their own are resumed (once the input is closed, only the role's state
    /// changes). Returns false when the consumer refused (the caller tries again on its next turn).
    pub fn pause_all(&mut self, pause: bool) -> bool {
        self.pauses.full = pause;
        if !pause {
            self.waiting.room();
        }
        let all = pause && self.waiting.enough_while_full();
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
