//! The fence between a partition's assignments. Each assignment of a partition is a generation; an
//! offset is stored only for work that counts in the current one, so work finishing after its
//! partition moved on vouches for nothing.
//!
//! Work a replica still holds when a partition comes back to it (an eager rebalance revokes every
//! partition and often hands the same ones back) is adopted, not done again: a record redelivered
//! while its earlier delivery's work is in flight waits for that work, and one whose work finished
//! since (or finished earlier but waited behind an unfinished offset) is released at once. Each of
//! those was a second delete call and a second set of events before.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;

use super::done::{self, Ranges};
use super::offsets::Offsets;

/// Offsets remembered per partition from earlier generations; past it the lowest go (a record
/// redelivered after that is done again: a duplicate, never a loss).
const LEFT_MAX: usize = 100_000;

#[derive(Debug)]
pub struct Fence<P> {
    generations: HashMap<P, u64>,
    next: u64,
    offsets: Offsets<P>,
    /// Per partition, offsets earlier generations left unstored.
    left: HashMap<P, BTreeMap<i64, Left>>,
    /// Per partition, offsets of the current generation whose work an earlier one is doing, with
    /// that work's generation: only it completes them.
    adopted: HashMap<P, HashMap<i64, u64>>,
    /// Per partition, offsets of the current generation done by the replica that committed last
    /// (its commit's metadata): completed at once when they come.
    elsewhere: HashMap<P, Ranges>,
    /// Per partition, the offsets known done when the generation began (by an earlier one here, or
    /// by the last owner): a commit names those not read again yet, so that a replica dying while
    /// it reads the partition again does not leave them to be redone.
    known: HashMap<P, Ranges>,
}

/// An offset an earlier generation left unstored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Left {
    /// Its work, begun in this generation, is in flight.
    Doing(u64),
    Done,
}

impl<P> Default for Fence<P> {
    fn default() -> Self {
        Fence {
            generations: HashMap::new(),
            next: 0,
            offsets: Offsets::default(),
            left: HashMap::new(),
            adopted: HashMap::new(),
            elsewhere: HashMap::new(),
            known: HashMap::new(),
        }
    }
}

/// What to do with a record just received.
#[derive(Debug, PartialEq)]
pub enum Arrival {
    /// Do its work, as work of this generation.
    New(u64),
    /// Its work is in flight from an earlier delivery: that work completes it.
    Adopted,
    /// Its work is done: store this offset, if any.
    Done(Option<i64>),
}

impl<P: Copy + Hash + Eq + Debug> Fence<P> {
    /// `p` is assigned: a new generation.
    pub fn assign(&mut self, p: P) {
        self.revoke(p, &[]);
        self.next += 1;
        self.generations.insert(p, self.next);
        let left = self.left.get(&p).into_iter().flatten();
        let finished = left.filter(|(_, l)| **l == Left::Done).map(|(o, _)| *o);
        self.known.insert(p, done::ranges(finished).collect());
    }

    /// `p` is revoked. Work in flight goes on and is remembered, but for `dropped`: offsets whose
    /// work the caller abandoned (a record held unstarted), done again when redelivered.
    pub fn revoke(&mut self, p: P, dropped: &[i64]) {
        let generation = self.generations.remove(&p).unwrap_or(0);
        let adopted = self.adopted.remove(&p).unwrap_or_default();
        self.elsewhere.remove(&p);
        self.known.remove(&p);
        let left = self.left.entry(p).or_default();
        let pending = self.offsets.revoke(p);
        if !pending.is_empty() {
            let done = pending.values().filter(|d| **d).count();
            tracing::info!(partition = ?p, in_flight = pending.len() - done, done_unstored = done,
                "partition left with work unstored: another owner replays it, this one adopts it");
        }
        left.extend(pending.into_iter().map(|(offset, done)| {
            let work = adopted.get(&offset).copied().unwrap_or(generation);
            (offset, if done { Left::Done } else { Left::Doing(work) })
        }));
        for offset in dropped {
            left.remove(offset);
        }
        while left.len() > LEFT_MAX {
            left.pop_first();
        }
    }

    /// `p` went to another replica, which replays its unstored offsets: the work this one had in
    /// flight there is abandoned. Should `p` come back, those records are done again; the ones
    /// done here meanwhile are still released at once.
    pub fn abandon(&mut self, p: P) {
        if let Some(left) = self.left.get_mut(&p) {
            left.retain(|_, l| *l == Left::Done);
        }
    }

    /// `p`'s committed offset came with the offsets done past it (see `done.rs`): those are not done
    /// again in this generation.
    pub fn done_elsewhere(&mut self, p: P, ranges: Ranges) {
        if self.generations.contains_key(&p) && !ranges.is_empty() {
            let known = self.known.remove(&p).unwrap_or_default();
            self.known.insert(p, done::union(known, ranges.clone(), i64::MIN));
            self.elsewhere.insert(p, ranges);
        }
    }

    /// The offset a commit of `p` resumes at, and the ranges of offsets done past it, ascending:
    /// those done in this generation, then those known done and not read again yet. `None` before
    /// the generation's first record, or when none is done.
    pub fn progress(&self, p: P) -> Option<(i64, impl Iterator<Item = (i64, i64)> + '_)> {
        let (next, finished, last) = self.offsets.window(&p)?;
        let known = self
            .known
            .get(&p)
            .map_or(&[][..], |k| &k[k.partition_point(|(_, hi)| *hi <= last)..]);
        if finished.is_empty() && known.is_empty() {
            return None;
        }
        let known = known.iter().map(move |(lo, hi)| ((*lo).max(last + 1), *hi));
        Some((next, done::ranges(finished.iter().copied()).chain(known)))
    }

    /// The offset a commit of `p` resumes at, when an offset past it is done.
    pub fn stored(&self, p: P) -> Option<i64> {
        self.offsets.progress(&p).map(|(next, _)| next)
    }

    /// Offsets of the current generations received and not yet stored.
    pub fn in_flight(&self) -> usize {
        self.offsets.in_flight()
    }

    /// The current generation of `p` (0 when not assigned).
    pub fn generation(&self, p: P) -> u64 {
        self.generations.get(&p).copied().unwrap_or(0)
    }

    /// A record at `offset` of `p` arrived (not a redelivery of work of this generation in flight:
    /// the caller knows those).
    pub fn arrive(&mut self, p: P, offset: i64) -> Arrival {
        if self.offsets.is_done(&p, offset) {
            return Arrival::Done(None);
        }
        if self.adopted.get(&p).is_some_and(|a| a.contains_key(&offset)) {
            // Read again (a gap re-read) while its adopted work is still in flight.
            return Arrival::Adopted;
        }
        if !self.offsets.tracks(&p) {
            // The first record of the generation: the group committed everything before it.
            if let Some(left) = self.left.get_mut(&p) {
                *left = left.split_off(&offset);
            }
        }
        self.offsets.received(p, offset);
        match self.left.get_mut(&p).and_then(|l| l.remove(&offset)) {
            Some(Left::Done) => Arrival::Done(self.offsets.complete(p, offset)),
            Some(Left::Doing(work)) => {
                self.adopted.entry(p).or_default().insert(offset, work);
                Arrival::Adopted
            }
            None if self.elsewhere.get(&p).is_some_and(|r| done::contains(r, offset)) => {
                Arrival::Done(self.offsets.complete(p, offset))
            }
            None => Arrival::New(self.generation(p)),
        }
    }

    /// The work of `offset` of `p`, begun in `generation`, is done. Returns the offset to store
    /// when the contiguous prefix of the current generation moved.
    ///
    /// Only the work the fence is waiting for counts. Work of a generation abandoned since (a
    /// verifier's check cancelled when its partition went elsewhere reports too, having published
    /// nothing) must not complete the same offset adopted from later work, or marked done while
    /// that work is still in flight: the offset would be stored with nothing published for it.
    pub fn complete(&mut self, p: P, offset: i64, generation: u64) -> Option<i64> {
        let adopted = self.adopted.get_mut(&p).is_some_and(|a| {
            let ours = a.get(&offset) == Some(&generation);
            ours && a.remove(&offset).is_some()
        });
        if adopted || self.generations.get(&p) == Some(&generation) {
            return self.offsets.complete(p, offset);
        }
        if let Some(l) = self.left.get_mut(&p).and_then(|l| l.get_mut(&offset)) {
            if *l == Left::Doing(generation) {
                *l = Left::Done;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
