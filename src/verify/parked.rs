//! Records the verifier holds until they are due, per partition and in offset order. A partition
//! with a record held is paused; a record librdkafka still delivers behind the head (it hands over
//! what it fetched before the pause) waits in line: dropped, it would be lost (the consumer's
//! position is past it), and put in the head's place, the head would be.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use chrono::{DateTime, Utc};

pub struct Parked<P, T> {
    queues: HashMap<P, VecDeque<(DateTime<Utc>, T)>>,
}

/// What [`Parked::offer`] did with a record.
#[derive(Debug, PartialEq)]
pub enum Offer<T> {
    /// Due, and nothing waits before it: check it now.
    Now(T),
    /// Held as its partition's head: pause the partition until it is due.
    Head,
    /// Held behind its partition's head.
    Behind,
}

impl<P: Copy + Eq + Hash, T> Parked<P, T> {
    pub fn new() -> Self {
        Parked { queues: HashMap::new() }
    }

    /// A record of partition `p`, due at `due`.
    pub fn offer(&mut self, p: P, due: DateTime<Utc>, item: T, now: DateTime<Utc>) -> Offer<T> {
        if let Some(queue) = self.queues.get_mut(&p) {
            queue.push_back((due, item));
            Offer::Behind
        } else if due <= now {
            Offer::Now(item)
        } else {
            self.queues.insert(p, VecDeque::from([(due, item)]));
            Offer::Head
        }
    }

    /// Takes the records due at `now`, each partition's in order, stopping at the first not due;
    /// and the partitions left with nothing held (to resume).
    pub fn take_due(&mut self, now: DateTime<Utc>) -> (Vec<T>, Vec<P>) {
        let mut due = Vec::new();
        let mut emptied = Vec::new();
        for (p, queue) in &mut self.queues {
            let before = due.len();
            while queue.front().is_some_and(|(d, _)| *d <= now) {
                due.extend(queue.pop_front().map(|(_, item)| item));
            }
            if due.len() > before && queue.is_empty() {
                emptied.push(*p);
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
        (due, emptied)
    }

    /// The earliest due time of a head.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.queues.values().filter_map(|q| q.front()).map(|(d, _)| *d).min()
    }

    /// The records held for partition `p`.
    pub fn of(&self, p: &P) -> impl Iterator<Item = &T> {
        self.queues.get(p).into_iter().flatten().map(|(_, item)| item)
    }

    /// Every record held.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.queues.values().flatten().map(|(_, item)| item)
    }

    /// Forgets partition `p` (revoked, or assigned afresh).
    pub fn remove(&mut self, p: &P) {
        self.queues.remove(p);
    }

    pub fn clear(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::seconds(s)
    }

    #[test]
    fn a_due_record_with_nothing_held_is_checked_at_once() {
        let mut parked: Parked<i32, &str> = Parked::new();
        assert_eq!(parked.offer(0, at(5), "a", at(10)), Offer::Now("a"));
        assert!(parked.of(&0).next().is_none());
    }

    #[test]
    fn records_behind_a_head_wait_in_line_and_none_is_lost() {
        let mut parked = Parked::new();
        assert_eq!(parked.offer(0, at(20), "head", at(10)), Offer::Head);
        // Delivered after the pause, from what librdkafka had fetched: one not due, one due.
        assert_eq!(parked.offer(0, at(30), "later", at(10)), Offer::Behind);
        assert_eq!(parked.offer(0, at(5), "due", at(10)), Offer::Behind);
        assert_eq!(parked.of(&0).copied().collect::<Vec<_>>(), ["head", "later", "due"]);
        assert_eq!(parked.next_due(), Some(at(20)));

        assert_eq!(parked.take_due(at(25)), (vec!["head"], vec![]));
        assert_eq!(parked.next_due(), Some(at(30)));
        assert_eq!(parked.take_due(at(30)), (vec!["later", "due"], vec![0]));
        assert!(parked.of(&0).next().is_none());
        assert_eq!(parked.next_due(), None);
    }

    #[test]
    fn partitions_wait_independently() {
        let mut parked = Parked::new();
        parked.offer(0, at(20), "a", at(10));
        parked.offer(1, at(15), "b", at(10));
        assert_eq!(parked.next_due(), Some(at(15)));
        assert_eq!(parked.take_due(at(16)), (vec!["b"], vec![1]));
        assert!(parked.of(&0).next().is_some() && parked.of(&1).next().is_none());
        parked.remove(&0);
        assert_eq!(parked.all().count(), 0);
    }
}
