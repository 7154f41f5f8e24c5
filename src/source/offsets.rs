//! Which input offset may be stored: the end of the contiguous completed prefix of each partition.
//! An event that finishes early never lets the stored offset pass an earlier one still in flight.
//! The first record and the first stored offset of each assignment are logged: together with the
//! committed offsets they show where a replica started and how far it vouched for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;

/// Tracks offsets per partition `P`: a partition number, or (topic, partition) for a consumer of
/// several topics.
#[derive(Debug)]
pub struct Offsets<P = i32> {
    partitions: HashMap<P, Partition>,
}

impl<P> Default for Offsets<P> {
    fn default() -> Self {
        Offsets {
            partitions: HashMap::new(),
        }
    }
}

#[derive(Debug)]
struct Partition {
    /// Offsets received and not yet released, with whether each is done.
    pending: BTreeMap<i64, bool>,
    /// Those of them done (waiting for an earlier one): what a commit's metadata names, read on
    /// every store, so kept apart from the many in flight.
    done: BTreeSet<i64>,
    /// The first offset received since the partition was assigned.
    first: i64,
    /// The last offset released since then, if any.
    stored: Option<i64>,
}

impl<P: Hash + Eq + Debug> Offsets<P> {
    /// Starts tracking an offset as it is received (offsets arrive in increasing order per partition).
    pub fn received(&mut self, partition: P, offset: i64) {
        let p = self.partitions.entry(partition).or_insert_with_key(|partition| {
            tracing::info!(?partition, offset, "first record since the assignment");
            Partition {
                pending: BTreeMap::new(),
                done: BTreeSet::new(),
                first: offset,
                stored: None,
            }
        });
        p.pending.insert(offset, false);
    }

    /// Marks an offset done. Returns the highest offset whose whole prefix is now done (store it:
    /// the next commit resumes after it), or `None` when the prefix did not move.
    pub fn complete(&mut self, partition: P, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&partition)?;
        *p.pending.get_mut(&offset)? = true;
        p.done.insert(offset);
        let mut last = None;
        while let Some(entry) = p.pending.first_entry() {
            if !*entry.get() {
                break;
            }
            last = Some(*entry.key());
            p.done.remove(entry.key());
            entry.remove();
        }
        if let Some(last) = last.filter(|_| p.stored.is_none()) {
            tracing::info!(
                ?partition,
                first_received = p.first,
                last,
                "first offset stored since the assignment"
            );
        }
        p.stored = last.or(p.stored);
        last
    }

    /// The offset a commit of `partition` resumes at, and the offsets done past it (waiting for an
    /// earlier one); `None` when none is.
    pub fn progress(&self, partition: &P) -> Option<(i64, &BTreeSet<i64>)> {
        let p = self.partitions.get(partition)?;
        let next = p.stored.map_or(p.first, |s| s + 1);
        (!p.done.is_empty()).then_some((next, &p.done))
    }

    /// The offset a commit of `partition` resumes at, the offsets done past it, and the last
    /// offset received; `None` before the first record.
    pub fn window(&self, partition: &P) -> Option<(i64, &BTreeSet<i64>, i64)> {
        let p = self.partitions.get(partition)?;
        let next = p.stored.map_or(p.first, |s| s + 1);
        let last = p.pending.last_key_value().map_or(next - 1, |(o, _)| *o);
        Some((next, &p.done, last))
    }

    /// Forgets partitions this consumer no longer owns: completions there store nothing. Returns
    /// the offsets received and not released, each with whether it is done.
    pub fn revoke(&mut self, partition: P) -> BTreeMap<i64, bool> {
        self.partitions
            .remove(&partition)
            .map(|p| p.pending)
            .unwrap_or_default()
    }

    /// Whether `partition` received a record since it was assigned.
    pub fn tracks(&self, partition: &P) -> bool {
        self.partitions.contains_key(partition)
    }

    /// Whether `offset` is done and waits only for an earlier one.
    pub fn is_done(&self, partition: &P, offset: i64) -> bool {
        self.partitions
            .get(partition)
            .is_some_and(|p| p.pending.get(&offset) == Some(&true))
    }

    /// Offsets received and not yet releasable, across partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn stores_only_the_contiguous_prefix() {
        let mut o: Offsets = Offsets::default();
        for off in [10, 11, 12] {
            o.received(0, off);
        }
        assert_eq!(o.complete(0, 11), None, "10 is still in flight");
        assert_eq!(o.complete(0, 10), Some(11));
        assert_eq!(o.complete(0, 12), Some(12));
        assert_eq!(o.in_flight(), 0);
        o.received(1, 5);
        o.revoke(1);
        assert_eq!(o.complete(1, 5), None);
    }

    #[test]
    fn progress_names_the_offsets_done_behind_an_unfinished_one() {
        let mut o: Offsets = Offsets::default();
        for off in 10..16 {
            o.received(0, off);
        }
        assert_eq!(o.progress(&0), None, "nothing done");
        o.complete(0, 12);
        o.complete(0, 14);
        assert_eq!(o.progress(&0), Some((10, &BTreeSet::from([12, 14]))));
        assert_eq!(o.complete(0, 10), Some(10));
        assert_eq!(o.progress(&0), Some((11, &BTreeSet::from([12, 14]))));
        assert_eq!(o.complete(0, 11), Some(12));
        assert_eq!(o.progress(&0), Some((13, &BTreeSet::from([14]))));
        assert_eq!(o.complete(0, 13), Some(14));
        assert_eq!(o.progress(&0), None);
    }

    proptest! {
        /// Whatever order events finish in, the stored offset is never at or past an unfinished
        /// offset, and once all finish it reaches the last one.
        #[test]
        fn never_passes_unfinished_work(n in 1usize..60, order in proptest::collection::vec(any::<u32>(), 60)) {
            let mut o: Offsets = Offsets::default();
            let offsets: Vec<i64> = (0..n as i64).map(|i| 100 + i * 2).collect();
            for off in &offsets {
                o.received(3, *off);
            }
            let mut finish: Vec<usize> = (0..n).collect();
            finish.sort_by_key(|i| order[*i]);
            let mut done = vec![false; n];
            let mut stored = None;
            for i in finish {
                done[i] = true;
                if let Some(s) = o.complete(3, offsets[i]) {
                    prop_assert!(stored.is_none_or(|prev| s > prev));
                    stored = Some(s);
                }
                if let Some(s) = stored {
                    for (j, off) in offsets.iter().enumerate() {
                        if *off <= s {
                            prop_assert!(done[j], "stored {s} past unfinished {off}");
                        }
                    }
                }
            }
            prop_assert_eq!(stored, offsets.last().copied());
        }
    }
}
