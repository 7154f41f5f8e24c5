//! Stable CloudEvents ids for output events: the same logical event (a replay after a crash or a
//! rebalance) gets the same id, so consumers can de-duplicate; distinct events get distinct ids.
//!
//! An id names the request, project, part, kind and attempt, plus a digest of the trace ids the
//! event names: two events of one part and attempt that name different ids (a refusal at the intake
//! and one at a re-request, two unknown projects of one request) differ there. Times and the
//! human-readable `detail` are left out: they change between a run and its replay.

use uuid::Uuid;

/// `{request}:{session}:{part}:{kind}:{attempt}:{digest of the ids}`.
pub fn event_id(request: &str, session: Option<Uuid>, part: u32, kind: &str, attempt: u32, ids: &[Uuid]) -> String {
    let session = session.map_or_else(|| "none".to_owned(), |s| s.to_string());
    format!("{request}:{session}:{part}:{kind}:{attempt}:{:016x}", digest(ids))
}

/// FNV-1a (64 bits) over the sorted ids: the same set, in any order, gives the same digest, on any
/// platform and Rust version (std's hashers promise neither).
fn digest(ids: &[Uuid]) -> u64 {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sorted.iter().flat_map(|id| *id.as_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn ids(raw: &[u128]) -> Vec<Uuid> {
        raw.iter().map(|n| Uuid::from_u128(*n)).collect()
    }

    proptest! {
        /// A replay names the same ids, perhaps in another order: the same id.
        #[test]
        fn replays_keep_their_id(raw in proptest::collection::vec(any::<u128>(), 0..50), part in 0u32..5, attempt in 0u32..4) {
            let a = ids(&raw);
            let mut b = a.clone();
            b.reverse();
            prop_assert_eq!(event_id("r", None, part, "failed:RejectedByApi", attempt, &a),
                            event_id("r", None, part, "failed:RejectedByApi", attempt, &b));
        }

        /// Events that differ in what they name, or in any other part of the id, never share one.
        #[test]
        fn distinct_events_get_distinct_ids(
            x in proptest::collection::btree_set(any::<u128>(), 0..20),
            y in proptest::collection::btree_set(any::<u128>(), 0..20),
            parts in (0u32..3, 0u32..3), attempts in (0u32..3, 0u32..3),
        ) {
            let same = x == y && parts.0 == parts.1 && attempts.0 == attempts.1;
            let xs: Vec<u128> = x.iter().copied().collect();
            let ys: Vec<u128> = y.iter().copied().collect();
            let a = event_id("r", None, parts.0, "failed:UnknownSession", attempts.0, &ids(&xs));
            let b = event_id("r", None, parts.1, "failed:UnknownSession", attempts.1, &ids(&ys));
            prop_assert_eq!(a == b, same);
        }
    }

    #[test]
    fn the_collisions_seen_before_are_gone() {
        // Two unknown projects of one request (by name: no session), one id each.
        let one = event_id("r", None, 0, "failed:UnknownSession", 1, &ids(&[1]));
        let two = event_id("r", None, 0, "failed:UnknownSession", 1, &ids(&[2]));
        assert_ne!(one, two);
        // The intake's refusal and the verifier's re-request refusal of one part, at attempt 1.
        let s = Some(Uuid::from_u128(9));
        let intake = event_id("r", s, 0, "failed:RejectedByApi", 1, &ids(&[3]));
        let recheck = event_id("r", s, 0, "failed:RejectedByApi", 1, &ids(&[4, 5]));
        assert_ne!(intake, recheck);
        let all: BTreeSet<_> = [one, two, intake, recheck].into_iter().collect();
        assert_eq!(all.len(), 4);
    }
}
