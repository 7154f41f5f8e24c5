//! The offsets done past a partition's committed one, carried in the commit's metadata, so that a
//! replica taking the partition over completes them at once instead of redoing their work and
//! repeating their events. Without it, one slow head (a workspace cut off, a selector under API
//! faults) makes every replica that takes the partition redo everything behind it.
//!
//! Format: `ew1:<committed>:<ranges>`, every number in base 36; each range is `<gap>+<len>`, the
//! first gap counted from the committed offset, the next from the end of the range before. The
//! committed offset is repeated so that metadata committed with another offset is never believed.
//! Ranges that do not fit in [`MAX_BYTES`] are left out: those offsets are redone, as without it.
//!
//! The metadata is stored with every offset stored (so librdkafka's own commits carry it, on its
//! timer, on revocation and on close), and committed each second on its own (`commit_progress`),
//! since librdkafka commits only when the stored offset moves, and behind a stuck head it does not.

const PREFIX: &str = "ew1:";

/// Under Kafka's default `offset.metadata.max.bytes` (4,096), with room to spare.
pub const MAX_BYTES: usize = 3_000;

/// Ranges of offsets done, each `(first, last)`, ascending and disjoint.
pub type Ranges = Vec<(i64, i64)>;

/// The metadata for `committed` (the next offset to read) and the offsets done past it, ascending.
/// It reads the offsets only until the metadata is full.
pub fn encode(committed: i64, done: impl IntoIterator<Item = i64>) -> String {
    let mut out = format!("{PREFIX}{}:", base36(committed));
    // The first offset the ranges written do not cover: the committed offset is not done.
    let mut end = committed;
    let mut open: Option<(i64, i64)> = None;
    for o in done.into_iter().filter(|o| *o > committed) {
        match &mut open {
            Some((_, hi)) if *hi + 1 == o => *hi = o,
            Some((_, hi)) if *hi >= o => {}
            _ => {
                if let Some(range) = open.replace((o, o)) {
                    if !push(&mut out, &mut end, range) {
                        return out;
                    }
                }
            }
        }
    }
    if let Some(range) = open {
        push(&mut out, &mut end, range);
    }
    out
}

/// Appends `(lo, hi)` to `out`, unless it would pass [`MAX_BYTES`]; says whether it did.
fn push(out: &mut String, end: &mut i64, (lo, hi): (i64, i64)) -> bool {
    let comma = if out.ends_with(':') { "" } else { "," };
    let item = format!("{comma}{}+{}", base36(lo - *end), base36(hi - lo + 1));
    if out.len() + item.len() > MAX_BYTES {
        return false;
    }
    out.push_str(&item);
    *end = hi + 1;
    true
}

/// The ranges `metadata` names past `committed`; none when it was written for another offset, or
/// by something else, or is malformed.
pub fn decode(metadata: &str, committed: i64) -> Ranges {
    parse(metadata, committed).unwrap_or_default()
}

fn parse(metadata: &str, committed: i64) -> Option<Ranges> {
    let rest = metadata.strip_prefix(PREFIX)?;
    let (base, items) = rest.split_once(':')?;
    if from_base36(base)? != committed {
        return None;
    }
    let mut end = committed;
    let mut out = Ranges::new();
    for item in items.split(',').filter(|i| !i.is_empty()) {
        let (gap, len) = item.split_once('+')?;
        let (gap, len) = (from_base36(gap)?, from_base36(len)?);
        // The encoder never writes an empty range or one touching the one before (or the
        // committed offset, which is not done by definition).
        if len == 0 || gap == 0 {
            return None;
        }
        let lo = end.checked_add(gap)?;
        let hi = lo.checked_add(len)?.checked_sub(1)?;
        out.push((lo, hi));
        end = hi + 1;
    }
    Some(out)
}

/// Whether `offset` is in one of `ranges`.
pub fn contains(ranges: &Ranges, offset: i64) -> bool {
    let i = ranges.partition_point(|(_, hi)| *hi < offset);
    ranges.get(i).is_some_and(|(lo, _)| *lo <= offset)
}

fn base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return if n == 0 { "0".into() } else { format!("-{}", base36(-n)) };
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => from_base36(rest).map(|n| -n),
        None if s.is_empty() => None,
        None => i64::from_str_radix(s, 36).ok().filter(|n| *n >= 0),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_commit_with_offsets_done_behind_a_slow_head() {
        let m = encode(100, [102, 103, 104, 110, 36_000]);
        assert_eq!(m, "ew1:2s:2+3,5+1,rox+1");
        assert_eq!(decode(&m, 100), vec![(102, 104), (110, 110), (36_000, 36_000)]);
        assert!(contains(&decode(&m, 100), 103) && !contains(&decode(&m, 100), 101));
    }

    #[test]
    fn metadata_of_another_offset_or_writer_names_nothing() {
        assert!(decode(&encode(100, [102]), 101).is_empty());
        for bad in [
            "",
            "ew1:",
            "ew1:2s",
            "ew1:2s:2",
            "ew1:2s:2+0",
            "ew1:2s:0+1",
            "ew1:2s:2+1,0+1",
            "ew1:2s:x!+1",
            "ew2:2s:2+1",
            "{\"a\":1}",
        ] {
            assert!(decode(bad, 100).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn what_does_not_fit_is_left_out() {
        let every_other: Vec<i64> = (0..10_000).map(|i| 2 * i + 1).collect();
        let m = encode(0, every_other.clone());
        assert!(m.len() <= MAX_BYTES);
        let ranges = decode(&m, 0);
        assert!(ranges.len() > 500, "{}", ranges.len());
        assert!(ranges.iter().all(|(lo, hi)| lo == hi && lo % 2 == 1));
    }

    proptest! {
        /// Whatever is decoded was done: no offset is skipped that was not finished.
        #[test]
        fn decoded_offsets_were_done(committed in 0i64..1_000_000, mut done in prop::collection::vec(0i64..5_000, 0..3_000)) {
            let done_abs: Vec<i64> = { done.sort_unstable(); done.dedup(); done.iter().map(|d| committed + d).collect() };
            let ranges = decode(&encode(committed, done_abs.clone()), committed);
            for (lo, hi) in &ranges {
                for o in *lo..=*hi {
                    prop_assert!(o > committed && done_abs.binary_search(&o).is_ok());
                }
            }
            if encode(committed, done_abs.clone()).len() < MAX_BYTES - 20 {
                let named: usize = ranges.iter().map(|(lo, hi)| (hi - lo + 1) as usize).sum();
                prop_assert_eq!(named, done_abs.iter().filter(|o| **o > committed).count());
            }
        }
    }
}
