//! Offset gaps in what a consumer receives. Compaction and transaction markers leave real gaps, but
//! a client can also skip records (seen against the test broker: librdkafka went from offset 14,453
//! to 14,455 after a resume). Offsets are committed past whatever was received, so a skipped record
//! would be lost. The first time a partition's offsets jump, the consumer reads again from the first
//! missing offset; a gap seen again from there is real.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Default)]
pub struct Gaps<P> {
    /// The last offset received per partition.
    last: HashMap<P, i64>,
    /// Per partition, the gap read again: (first missing offset, the offset after the gap).
    reread: HashMap<P, (i64, i64)>,
}

/// What to do with a record, given the offsets before it.
#[derive(Debug, PartialEq)]
pub enum Gap {
    /// No gap (or a record delivered again): process it.
    None,
    /// Offsets from `from` were not received: drop this record and read again from `from`.
    ReadAgain { from: i64 },
    /// The same gap after reading again: a real one. Process the record.
    Real { prev: i64 },
}

impl<P: Copy + Eq + Hash> Gaps<P> {
    pub fn new() -> Gaps<P> {
        Gaps {
            last: HashMap::new(),
            reread: HashMap::new(),
        }
    }

    /// A record at `offset` of partition `p`. Unless told to read again, the record counts as
    /// received.
    pub fn check(&mut self, p: P, offset: i64) -> Gap {
        let gap = match self.last.get(&p) {
            Some(&prev) if offset > prev + 1 => {
                if self.reread.get(&p) == Some(&(prev + 1, offset)) {
                    Gap::Real { prev }
                } else {
                    self.reread.insert(p, (prev + 1, offset));
                    return Gap::ReadAgain { from: prev + 1 };
                }
            }
            _ => Gap::None,
        };
        self.last.insert(p, offset);
        gap
    }

    /// Forgets partition `p` (assigned afresh, or revoked).
    pub fn forget(&mut self, p: &P) {
        self.last.remove(p);
        self.reread.remove(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_and_repeated_offsets_are_no_gap() {
        let mut g = Gaps::new();
        for o in [5, 6, 7, 3, 4, 5] {
            assert_eq!(g.check(0, o), Gap::None, "offset {o}");
        }
    }

    #[test]
    fn a_skipped_record_is_read_again_and_then_arrives() {
        let mut g = Gaps::new();
        g.check(1, 14_453);
        assert_eq!(g.check(1, 14_455), Gap::ReadAgain { from: 14_454 });
        // Read again from 14,454: the record arrives, and the rest follows.
        assert_eq!(g.check(1, 14_454), Gap::None);
        assert_eq!(g.check(1, 14_455), Gap::None);
    }

    #[test]
    fn a_gap_seen_again_is_real() {
        let mut g = Gaps::new();
        g.check(0, 10);
        assert_eq!(g.check(0, 20), Gap::ReadAgain { from: 11 });
        // The broker has nothing from 11 to 19 (compaction): it answers with 20 again.
        assert_eq!(g.check(0, 20), Gap::Real { prev: 10 });
        assert_eq!(g.check(0, 21), Gap::None);
        // A later, different gap is read again too.
        assert_eq!(g.check(0, 30), Gap::ReadAgain { from: 22 });
    }

    #[test]
    fn a_gap_is_real_only_when_the_same_record_follows_it_again() {
        let mut g = Gaps::new();
        g.check(0, 10);
        assert_eq!(g.check(0, 12), Gap::ReadAgain { from: 11 });
        // Another record from before the new read (13): not proof; read again.
        assert_eq!(g.check(0, 13), Gap::ReadAgain { from: 11 });
        assert_eq!(g.check(0, 13), Gap::Real { prev: 10 });
    }

    #[test]
    fn partitions_are_apart_and_forgotten_on_reassignment() {
        let mut g = Gaps::new();
        g.check(0, 10);
        g.check(1, 50);
        assert_eq!(g.check(1, 51), Gap::None);
        g.forget(&0);
        assert_eq!(g.check(0, 40), Gap::None, "first record after an assignment");
    }
}
