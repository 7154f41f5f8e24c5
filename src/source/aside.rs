//! Events set aside. When several workspaces share the intake, each may hold at most its share of
//! the in-flight bound. A workspace at its share (a refused key, an outage, or just a backlog) takes
//! no more memory: its further events are dropped unprocessed with their offsets left unstored, so
//! their partitions' commits wait, and they are read again once the workspace is down to half its
//! share. Other workspaces' events on the same partitions go on meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A partition sought back whose records set aside have not all come again by then is sought
/// back again (a seek librdkafka dropped must not leave them unread while the partition is ours).
const READ_AGAIN_AFTER: Duration = Duration::from_secs(30);

/// Events set aside per partition `P` (a partition number, or (topic, partition)).
#[derive(Debug)]
pub struct Aside<P> {
    /// Per partition: the offsets set aside, and the workspaces they belong to.
    waiting: HashMap<P, (BTreeSet<i64>, BTreeSet<String>)>,
    /// Per partition: offsets sought back and not delivered again yet, and when the seek was made.
    /// They are no work in flight either: a revocation must give them back too.
    reading: HashMap<P, (BTreeSet<i64>, Instant)>,
}

impl<P> Default for Aside<P> {
    fn default() -> Self {
        Aside {
            waiting: HashMap::new(),
            reading: HashMap::new(),
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
        let (offsets, workspaces) = self.waiting.entry(partition).or_default();
        offsets.insert(offset);
        if !workspaces.contains(workspace) {
            workspaces.insert(workspace.to_owned());
        }
    }

    /// A record of `partition` was delivered: if it was sought back, it is here again.
    pub fn arrived(&mut self, partition: P, offset: i64) {
        if let Some((offsets, _)) = self.reading.get_mut(&partition) {
            offsets.remove(&offset);
            if offsets.is_empty() {
                self.reading.remove(&partition);
            }
        }
    }

    /// The partitions to seek back, each to its first offset not delivered again: those whose
    /// workspaces all have room again, and those sought back long ago whose records have not all
    /// come. What is still short of room when it comes is set aside again.
    pub fn due(&mut self, has_room: impl Fn(&str) -> bool, now: Instant) -> Vec<(P, i64)> {
        let ready: Vec<P> = (self.waiting.iter())
            .filter(|(_, (_, workspaces))| workspaces.iter().all(|w| has_room(w)))
            .map(|(p, _)| *p)
            .collect();
        for p in &ready {
            let (offsets, _) = self.waiting.remove(p).unwrap_or_default();
            let (reading, at) = self.reading.entry(*p).or_insert_with(|| (BTreeSet::new(), now));
            reading.extend(offsets);
            *at = now;
        }
        let mut seek = Vec::new();
        for (p, (offsets, at)) in &mut self.reading {
            if ready.contains(p) || now.duration_since(*at) >= READ_AGAIN_AFTER {
                *at = now;
                seek.extend(offsets.first().map(|o| (*p, *o)));
            }
        }
        seek
    }

    /// Forgets partition `p` (revoked, or assigned afresh): the offsets it had set aside or sought
    /// back, which no work will complete.
    pub fn forget(&mut self, p: P) -> Vec<i64> {
        let waiting = self.waiting.remove(&p).map(|(o, _)| o).unwrap_or_default();
        let reading = self.reading.remove(&p).map(|(o, _)| o).unwrap_or_default();
        waiting.into_iter().chain(reading).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_read_again_from_its_first_offset_once_all_its_workspaces_have_room() {
        let now = Instant::now();
        let mut aside: Aside<i32> = Aside::default();
        aside.set_aside(0, 12, "b");
        aside.set_aside(0, 10, "b");
        aside.set_aside(0, 15, "c");
        aside.set_aside(1, 7, "b");
        let mut due = aside.due(|w| w == "b", now);
        assert_eq!(due, [(1, 7)], "partition 0 waits for `c` too");
        due = aside.due(|_| true, now);
        assert_eq!(due, [(0, 10)]);
        assert!(aside.due(|_| true, now).is_empty(), "each sought back once");
    }

    #[test]
    fn records_sought_back_and_not_come_yet_are_given_back_on_revocation() {
        let now = Instant::now();
        let mut aside: Aside<i32> = Aside::default();
        aside.set_aside(2, 5, "b");
        aside.set_aside(2, 3, "b");
        assert_eq!(aside.due(|_| true, now), [(2, 3)]);
        aside.arrived(2, 3);
        assert_eq!(
            aside.forget(2),
            [5],
            "5 was sought back but has not come: no work holds it"
        );
        assert!(aside.due(|_| true, now).is_empty());
    }

    #[test]
    fn a_seek_whose_records_do_not_come_is_made_again() {
        let now = Instant::now();
        let mut aside: Aside<i32> = Aside::default();
        aside.set_aside(0, 8, "b");
        assert_eq!(aside.due(|_| true, now), [(0, 8)]);
        assert!(aside.due(|_| true, now + Duration::from_secs(29)).is_empty());
        assert_eq!(aside.due(|_| true, now + READ_AGAIN_AFTER), [(0, 8)]);
        aside.arrived(0, 8);
        assert!(aside.due(|_| true, now + 2 * READ_AGAIN_AFTER).is_empty(), "it came");
    }

    #[test]
    fn one_workspace_holds_the_whole_bound() {
        assert_eq!(share(100_000, 1), None);
        assert_eq!(share(100_000, 4), Some(25_000));
    }
}
