//! Events set aside. When several workspaces share the intake, each may hold at most its share of
//! the in-flight bound. A workspace at its share (a refused key, an outage, or just a backlog) takes
//! no more memory: its further events are dropped unprocessed with their offsets left unstored, so
//! their partitions' commits wait, and they are read again once the workspace is down to half its
//! share. Other workspaces' events on the same partitions go on meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Events set aside per partition `P` (a partition number, or (topic, partition)).
#[derive(Debug)]
pub struct Aside<P> {
    /// Per partition: the offsets set aside, and the workspaces they belong to.
    partitions: HashMap<P, (BTreeSet<i64>, BTreeSet<String>)>,
}

impl<P> Default for Aside<P> {
    fn default() -> Self {
        Aside {
            partitions: HashMap::new(),
        }
    }
}

/// Offsets received and not yet stored past which a role pauses its input. Events set aside hold
/// their partitions' stored offsets, and every offset read after them waits (about 20 bytes each).
pub const HELD_OFFSETS_MAX: usize = 1_000_000;

/// The share of `max_in_flight` each of `workspaces` may hold; `None` for one workspace, which may
/// hold the whole bound.
pub fn share(max_in_flight: usize, workspaces: usize) -> Option<usize> {
    (workspaces > 1).then(|| (max_in_flight / workspaces).max(1))
}

impl<P: Copy + Eq + Hash> Aside<P> {
    pub fn set_aside(&mut self, partition: P, offset: i64, workspace: &str) {
        let (offsets, workspaces) = self.partitions.entry(partition).or_default();
        offsets.insert(offset);
        if !workspaces.contains(workspace) {
            workspaces.insert(workspace.to_owned());
        }
    }

    /// The partitions to read again, each from its first offset set aside: those whose workspaces
    /// all have room again. They are forgotten here; what is still short of room is set aside again.
    pub fn due(&mut self, has_room: impl Fn(&str) -> bool) -> Vec<(P, i64)> {
        let ready: Vec<P> = (self.partitions.iter())
            .filter(|(_, (_, workspaces))| workspaces.iter().all(|w| has_room(w)))
            .map(|(p, _)| *p)
            .collect();
        let first = |p: &P, offsets: &BTreeSet<i64>| offsets.first().map(|o| (*p, *o));
        (ready.iter())
            .filter_map(|p| self.partitions.remove(p).and_then(|(offsets, _)| first(p, &offsets)))
            .collect()
    }

    /// Forgets partition `p` (revoked, or assigned afresh): the offsets it had set aside, which
    /// no work will complete.
    pub fn forget(&mut self, p: P) -> Vec<i64> {
        self.partitions
            .remove(&p)
            .map(|(offsets, _)| offsets.into_iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_read_again_from_its_first_offset_once_all_its_workspaces_have_room() {
        let mut aside: Aside<i32> = Aside::default();
        aside.set_aside(0, 12, "b");
        aside.set_aside(0, 10, "b");
        aside.set_aside(0, 15, "c");
        aside.set_aside(1, 7, "b");
        let mut due = aside.due(|w| w == "b");
        assert_eq!(due, [(1, 7)], "partition 0 waits for `c` too");
        due = aside.due(|_| true);
        assert_eq!(due, [(0, 10)]);
        assert!(aside.due(|_| true).is_empty(), "each read again once");
    }

    #[test]
    fn a_forgotten_partition_gives_back_its_offsets() {
        let mut aside: Aside<i32> = Aside::default();
        aside.set_aside(2, 5, "b");
        aside.set_aside(2, 3, "b");
        assert_eq!(aside.forget(2), [3, 5]);
        assert!(aside.due(|_| true).is_empty());
    }

    #[test]
    fn one_workspace_holds_the_whole_bound() {
        assert_eq!(share(100_000, 1), None);
        assert_eq!(share(100_000, 4), Some(25_000));
    }
}
