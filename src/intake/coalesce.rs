//! Batches of distinct trace ids per (workspace, session), at most `max` ids, flushed when full or
//! `linger` after their first id. A plain struct; the intake loop owns the timer.

use super::FastMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A batch ready to send: distinct ids, and the owners (request parts) waiting on them as
/// (index into `ids`, owner): one entry per id, plus one per duplicate of it.
#[derive(Debug)]
pub struct Batch<K, O> {
    pub key: K,
    pub ids: Vec<Uuid>,
    pub owners: Vec<(u32, O)>,
}

struct Open<O> {
    ids: Vec<Uuid>,
    owners: Vec<(u32, O)>,
    index: FastMap<Uuid, u32>,
    first_at: Instant,
}

pub struct Coalescer<K, O> {
    max: usize,
    linger: Duration,
    open: FastMap<K, Open<O>>,
}

impl<O> Open<O> {
    fn new(now: Instant) -> Self {
        Open {
            ids: Vec::new(),
            owners: Vec::new(),
            index: FastMap::default(),
            first_at: now,
        }
    }
}

impl<K: Hash + Eq + Clone, O> Coalescer<K, O> {
    pub fn new(max: usize, linger: Duration) -> Self {
        Coalescer {
            max: max.max(1),
            linger,
            open: FastMap::default(),
        }
    }

    /// [`Coalescer::push_all`] of one id.
    #[cfg(test)]
    fn push(&mut self, key: K, id: Uuid, owner: O, now: Instant) -> Option<Batch<K, O>>
    where
        O: Copy,
    {
        self.push_all(key, &[id], owner, now).pop()
    }

    /// Adds `ids` for `owner` (the key is looked up once); returns the batches they filled. An id
    /// already waiting in the open batch of the same key is sent once, for every owner.
    pub fn push_all(&mut self, key: K, ids: &[Uuid], owner: O, now: Instant) -> Vec<Batch<K, O>>
    where
        O: Copy,
    {
        let mut full = Vec::new();
        let open = self.open.entry(key.clone()).or_insert_with(|| Open::new(now));
        for id in ids {
            if let Some(&i) = open.index.get(id) {
                open.owners.push((i, owner));
                continue;
            }
            let i = open.ids.len() as u32;
            open.index.insert(*id, i);
            open.ids.push(*id);
            open.owners.push((i, owner));
            if open.ids.len() >= self.max {
                let done = std::mem::replace(open, Open::new(now));
                full.push(Batch {
                    key: key.clone(),
                    ids: done.ids,
                    owners: done.owners,
                });
            }
        }
        if open.ids.is_empty() {
            self.open.remove(&key);
        }
        full
    }

    fn take(&mut self, key: &K) -> Option<Batch<K, O>> {
        let open = self.open.remove(key)?;
        Some(Batch {
            key: key.clone(),
            ids: open.ids,
            owners: open.owners,
        })
    }

    /// When the oldest open batch is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.first_at + self.linger).min()
    }

    /// Batches whose linger has passed.
    pub fn expired(&mut self, now: Instant) -> Vec<Batch<K, O>> {
        let due: Vec<K> = self
            .open
            .iter()
            .filter(|(_, o)| o.first_at + self.linger <= now)
            .map(|(k, _)| k.clone())
            .collect();
        due.iter().filter_map(|k| self.take(k)).collect()
    }

    /// Every open batch (shutdown, revoke).
    pub fn drain(&mut self) -> Vec<Batch<K, O>> {
        let keys: Vec<K> = self.open.keys().cloned().collect();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }

    /// The open batch with the most ids, taken early (the input is paused and nothing else moves).
    pub fn take_fullest(&mut self) -> Option<Batch<K, O>> {
        let key = self
            .open
            .iter()
            .max_by_key(|(_, o)| o.ids.len())
            .map(|(k, _)| k.clone())?;
        self.take(&key)
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn flushes_when_full_and_after_linger() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(2, Duration::from_secs(2));
        assert!(c.push("s", Uuid::from_u128(1), 'a', t0).is_none());
        assert!(
            c.push("s", Uuid::from_u128(1), 'b', t0).is_none(),
            "a duplicate does not count"
        );
        let full = c.push("s", Uuid::from_u128(2), 'a', t0).expect("full at two ids");
        assert_eq!(full.ids.len(), 2);
        assert_eq!(full.owners, vec![(0, 'a'), (0, 'b'), (1, 'a')]);
        c.push("t", Uuid::from_u128(3), 'c', t0 + Duration::from_secs(1));
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(3)));
        assert!(c.expired(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(c.expired(t0 + Duration::from_secs(3)).len(), 1);
        assert!(c.is_empty());
        let mut c = Coalescer::new(10, Duration::from_secs(2));
        c.push("u", Uuid::from_u128(4), 'd', t0);
        c.push("v", Uuid::from_u128(5), 'e', t0);
        c.push("v", Uuid::from_u128(6), 'e', t0);
        assert_eq!(c.take_fullest().map(|b| b.key), Some("v"));
        assert_eq!(c.take_fullest().map(|b| b.key), Some("u"));
        assert!(c.take_fullest().is_none());
        let mut c = Coalescer::new(2, Duration::from_secs(2));
        let ids: Vec<Uuid> = (7..10).map(Uuid::from_u128).collect();
        let full = c.push_all("w", &ids, 'f', t0);
        assert_eq!(full.len(), 1, "the first two fill a batch");
        assert_eq!(full[0].ids, ids[..2]);
        assert_eq!(
            c.take_fullest().map(|b| b.ids),
            Some(ids[2..].to_vec()),
            "the third opens the next"
        );
    }

    proptest! {
        /// Every pushed (id, owner) comes out exactly once, batches hold ≤ max distinct ids of one key,
        /// and with no linger flushes the number of batches per key is the minimum, ceil(ids / max).
        #[test]
        fn nothing_lost_and_batches_minimal(items in proptest::collection::vec((0u8..4, 0u16..300), 1..2000), max in 1usize..50) {
            let t0 = Instant::now();
            let mut c = Coalescer::new(max, Duration::from_secs(60));
            let mut out = Vec::new();
            for (n, (key, id)) in items.iter().enumerate() {
                out.extend(c.push(*key, Uuid::from_u128(*id as u128), n, t0));
            }
            out.extend(c.drain());
            let mut seen = HashSet::new();
            let mut batches: HashMap<u8, usize> = HashMap::new();
            for b in &out {
                prop_assert!(b.ids.len() <= max && !b.ids.is_empty());
                prop_assert_eq!(b.ids.iter().collect::<HashSet<_>>().len(), b.ids.len());
                *batches.entry(b.key).or_default() += 1;
                for (i, o) in &b.owners {
                    prop_assert!(seen.insert(*o), "owner {} twice", o);
                    prop_assert_eq!(items[*o].0, b.key);
                    prop_assert_eq!(Uuid::from_u128(items[*o].1 as u128), b.ids[*i as usize]);
                }
            }
            prop_assert_eq!(seen.len(), items.len());
            for (key, count) in batches {
                // Distinct ids are at least as many as the batches need; duplicates of an id may
                // recur after its batch left, so the bound is on pushes of new ids.
                let pushes = out.iter().filter(|b| b.key == key).map(|b| b.ids.len()).sum::<usize>();
                prop_assert_eq!(count, pushes.div_ceil(max));
            }
        }
    }
}
