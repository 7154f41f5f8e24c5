//! The offsets done past a partition's committed one, carried in the commit's metadata, so that a
//! replica taking the partition over completes them at once instead of redoing their work and
//! repeating their events. Without it, one slow head (a workspace cut off, a selector under API
//! faults) makes every replica that takes the partition redo everything behind it.
//!
//! Format: `ew2:<committed>:<bits>`, the committed offset in base 36. `<bits>` is a bitmap of the
//! offsets past the committed one, six to a character of the URL-safe base64 alphabet: character
//! `i` covers offsets `committed + 1 + 6i` to `committed + 6 + 6i`, the lowest bit the first. A
//! character followed by `*<n>.` (`n` in base 36) stands for itself repeated `n` more times, so a
//! long run done (or not) takes a few characters. A bitmap and not ranges: behind a stuck workspace
//! the done offsets are interleaved with its own, and a range then names about two offsets in four
//! characters where the bitmap names twenty-four. The committed offset is repeated so that metadata
//! committed with another offset is never believed.
//!
//! What does not fit in [`MAX_BYTES`] is saved whole on the progress topic (`saved.rs`, up to
//! [`SAVED_MAX_BYTES`]), and the metadata ends in `~<partition>.<offset>` (base 36), where that
//! record is. The next owner reads it as the partition is assigned and puts it in place of the
//! pointer, `<metadata>~<record>`: the offsets either names are done. A record written for an
//! earlier committed offset still counts (an offset done stays done), never one for a later
//! offset. What neither names (a record not saved yet, or not read) is redone, as without them.
//!
//! The metadata is stored with every offset stored (so librdkafka's own commits carry it, on its
//! timer, on revocation and on close), and committed and stored again every 100 ms on its own
//! (`commit_progress`): librdkafka's timer commits only when the stored offset moves, which behind a
//! stuck head it does not, and a revocation commits the metadata stored last.

const PREFIX: &str = "ew2:";

/// Under Kafka's default `offset.metadata.max.bytes` (4,096): about 24,000 offsets when the done
/// ones are interleaved with others, and any number in long runs.
pub const MAX_BYTES: usize = 4_000;

/// The longest saved record: about 600,000 offsets interleaved with others.
pub const SAVED_MAX_BYTES: usize = 100_000;

/// Between a commit's metadata and the saved record it names (or that record, once read).
const SAVED: char = '~';

/// At most this many ranges are decoded (a prefix of the rest is named): metadata the worker wrote
/// never comes near, and a corrupt one cannot take the memory.
const MAX_RANGES: usize = 100_000;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Ranges of offsets done, each `(first, last)`, ascending and disjoint.
pub type Ranges = Vec<(i64, i64)>;

/// The text for `committed` (the next offset to read) and the ranges of offsets done past it,
/// ascending and disjoint, in at most `max` bytes, and whether it names every one. It reads the
/// ranges only until it is full, and a long range costs no more than a short one.
pub fn encode(committed: i64, done: impl IntoIterator<Item = (i64, i64)>, max: usize) -> (String, bool) {
    let mut out = Bitmap {
        text: format!("{PREFIX}{}:", base36(committed)),
        run: None,
        max,
    };
    // The six offsets of `group` (counted from the first past the committed one) read so far.
    let (mut group, mut bits) = (0i64, 0u8);
    for (lo, hi) in done {
        // Offsets counted from the first past the committed one.
        let (mut i, last) = ((lo - committed - 1).max(0), hi - committed - 1);
        while i <= last {
            let g = i / 6;
            if g > group {
                if !out.push(bits, 1) || !out.push(0, g - group - 1) {
                    return (out.text, false);
                }
                (group, bits) = (g, 0);
            }
            let whole = (last - i + 1) / 6;
            if i % 6 == 0 && whole > 1 {
                // Groups `g` to `g + whole - 1` all done: the last one is left unwritten.
                if !out.push(63, whole - 1) {
                    return (out.text, false);
                }
                (group, bits) = (g + whole - 1, 63);
                i += 6 * whole;
            } else {
                bits |= 1 << (i % 6);
                i += 1;
            }
        }
    }
    if bits != 0 && !out.push(bits, 1) {
        return (out.text, false);
    }
    out.finish()
}

/// The metadata written so far, and the run of one character not written yet.
struct Bitmap {
    text: String,
    run: Option<(u8, i64)>,
    max: usize,
}

impl Bitmap {
    /// Adds `n` characters of `bits`; says whether everything before them fitted.
    fn push(&mut self, bits: u8, n: i64) -> bool {
        if n == 0 {
            return true;
        }
        match &mut self.run {
            Some((b, count)) if *b == bits => {
                *count += n;
                true
            }
            _ => {
                let fitted = self.flush();
                self.run = Some((bits, n));
                fitted
            }
        }
    }

    /// Writes the run held, in as few characters as it takes, or as much of it as fits.
    fn flush(&mut self) -> bool {
        let Some((bits, count)) = self.run.take() else {
            return true;
        };
        let c = BASE64[usize::from(bits)] as char;
        let room = self.max.saturating_sub(self.text.len());
        let repeat = (count > 4).then(|| format!("{c}*{}.", base36(count - 1)));
        match repeat {
            Some(repeat) if repeat.len() <= room => {
                self.text.push_str(&repeat);
                true
            }
            _ => {
                let n = usize::try_from(count).unwrap_or(usize::MAX).min(room);
                self.text.extend(std::iter::repeat_n(c, n));
                i64::try_from(n) == Ok(count)
            }
        }
    }

    fn finish(mut self) -> (String, bool) {
        let whole = self.flush();
        (self.text, whole)
    }
}

/// `metadata` naming also the saved record at `at` (`<partition>.<offset>` in base 36).
pub fn pointing(metadata: String, partition: i32, offset: i64) -> String {
    format!("{metadata}{SAVED}{}.{}", base36(partition.into()), base36(offset))
}

/// Where the saved record `metadata` names is, (partition, offset), if it names one.
pub fn saved_at(metadata: &str) -> Option<(i32, i64)> {
    let (_, at) = metadata.split_once(SAVED)?;
    let (p, o) = at.split_once('.')?;
    Some((i32::try_from(from_base36(p)?).ok()?, from_base36(o)?))
}

/// `metadata` with the saved `record` in place of where it is.
pub fn with_saved(metadata: &str, record: &str) -> String {
    let inline = metadata.split_once(SAVED).map_or(metadata, |(m, _)| m);
    format!("{inline}{SAVED}{record}")
}

/// The ranges `metadata` names past `committed`, with those of the saved record put in it; none
/// when it was written for another offset, or by something else, or is malformed.
pub fn decode(metadata: &str, committed: i64) -> Ranges {
    let (inline, saved) = metadata.split_once(SAVED).unwrap_or((metadata, ""));
    let Some((_, ranges)) = parse(inline).filter(|(base, _)| *base == committed) else {
        return Ranges::new();
    };
    match parse(saved).filter(|(base, _)| *base <= committed) {
        Some((_, more)) => union(ranges, more, committed),
        None => ranges,
    }
}

/// The offset `text` was written for, and the ranges it names past it.
fn parse(text: &str) -> Option<(i64, Ranges)> {
    let rest = text.strip_prefix(PREFIX)?;
    let (base, body) = rest.split_once(':')?;
    let committed = from_base36(base)?;
    let mut out = Ranges::new();
    // The first offset of the next character, and the character before, which `*` repeats.
    let (mut at, mut last) = (committed.checked_add(1)?, None);
    let mut i = 0;
    while i < body.len() && out.len() < MAX_RANGES {
        if body.as_bytes()[i] == b'*' {
            let end = i + 1 + body[i + 1..].find('.')?;
            let n = from_base36(&body[i + 1..end]).filter(|n| *n >= 0)?;
            add(&mut out, &mut at, last.take()?, n)?;
            i = end + 1;
        } else {
            let bits = BASE64.iter().position(|b| *b == body.as_bytes()[i])? as u8;
            add(&mut out, &mut at, bits, 1)?;
            last = Some(bits);
            i += 1;
        }
    }
    out.truncate(MAX_RANGES);
    Some((committed, out))
}

/// The offsets past `committed` that `a` or `b` names, as ranges.
pub fn union(a: Ranges, b: Ranges, committed: i64) -> Ranges {
    let mut all: Ranges = a.into_iter().chain(b).filter(|(_, hi)| *hi > committed).collect();
    all.sort_unstable();
    let mut out = Ranges::with_capacity(all.len());
    for (lo, hi) in all {
        let lo = lo.max(committed.saturating_add(1));
        match out.last_mut() {
            Some((_, last)) if lo <= *last + 1 => *last = (*last).max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Ascending offsets as ranges of consecutive ones.
pub fn ranges(offsets: impl IntoIterator<Item = i64>) -> impl Iterator<Item = (i64, i64)> {
    let mut offsets = offsets.into_iter().peekable();
    std::iter::from_fn(move || {
        let lo = offsets.next()?;
        let mut hi = lo;
        while let Some(o) = offsets.next_if(|o| *o == hi + 1) {
            hi = o;
        }
        Some((lo, hi))
    })
}

/// Adds `n` characters of `bits`, the first at offset `at`, to `out`; moves `at` past them.
fn add(out: &mut Ranges, at: &mut i64, bits: u8, n: i64) -> Option<()> {
    let end = at.checked_add(n.checked_mul(6)?)?;
    if bits == 0 || n == 0 {
        *at = end;
        return Some(());
    }
    while *at < end && out.len() <= MAX_RANGES {
        for j in 0..6 {
            if bits & (1 << j) != 0 {
                let o = *at + j;
                match out.last_mut() {
                    Some((_, hi)) if *hi + 1 == o => *hi = o,
                    _ => out.push((o, o)),
                }
            }
        }
        // All six done: the rest of the run is one range.
        if bits == 63 {
            if let Some((_, hi)) = out.last_mut() {
                *hi = end - 1;
            }
            break;
        }
        *at += 6;
    }
    *at = end;
    Some(())
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

    /// The commit's metadata.
    fn inline(committed: i64, done: impl IntoIterator<Item = i64>) -> String {
        encode(committed, ranges(done), MAX_BYTES).0
    }

    #[test]
    fn a_commit_with_offsets_done_behind_a_slow_head() {
        let m = inline(100, [102, 103, 104, 110, 36_000]);
        // 101-106: 0b001110 (O); 107-112: 0b001000 (I); 5,981 sixes none (A, 5,980 more); 0b000010 (C).
        assert_eq!(m, "ew2:2s:OIA*4m4.C");
        assert_eq!(decode(&m, 100), vec![(102, 104), (110, 110), (36_000, 36_000)]);
        assert!(contains(&decode(&m, 100), 103) && !contains(&decode(&m, 100), 101));
    }

    #[test]
    fn a_long_run_done_takes_a_few_characters() {
        let m = inline(0, (1..=1_000_000).chain([1_000_003]));
        assert_eq!(m, "ew2:0:_*3kll.PB");
        assert_eq!(decode(&m, 0), vec![(1, 1_000_000), (1_000_003, 1_000_003)]);
    }

    #[test]
    fn metadata_of_another_offset_or_writer_names_nothing() {
        assert!(decode(&inline(100, [102]), 101).is_empty());
        for bad in [
            "",
            "ew2:",
            "ew2:2s",
            "ew2:2s:A!",
            "ew2:2s:*3.",
            "ew2:2s:A*3",
            "ew2:2s:A*-3.",
            "ew2:2s:A*3.*3.",
            "ew2:2s:é",
            "ew1:2s:2+1",
            "{\"a\":1}",
        ] {
            assert!(decode(bad, 100).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn interleaved_offsets_fit_four_times_as_many_as_ranges_did() {
        // One in three not done, as behind a workspace cut off: 24,000 offsets, all named.
        let done: Vec<i64> = (1..=24_000).filter(|o| o % 3 != 0).collect();
        let m = inline(0, done.clone());
        assert!(m.len() <= MAX_BYTES, "{}", m.len());
        let named: Vec<i64> = decode(&m, 0).iter().flat_map(|(lo, hi)| *lo..=*hi).collect();
        assert_eq!(named, done);
    }

    #[test]
    fn what_does_not_fit_is_left_out() {
        let every_other: Vec<i64> = (0..30_000).map(|i| 2 * i + 1).collect();
        let m = inline(0, every_other.clone());
        assert!(m.len() <= MAX_BYTES);
        let ranges = decode(&m, 0);
        assert!(ranges.len() > 10_000, "{}", ranges.len());
        assert!(ranges.iter().all(|(lo, hi)| lo == hi && lo % 2 == 1));
    }

    #[test]
    fn a_saved_record_names_what_the_metadata_cannot() {
        // Five in thirteen not done, over 60,000 offsets: more than the metadata names.
        let done: Vec<i64> = (1..=60_000).filter(|o| o * 7_919 % 13 < 8).collect();
        let (inline, whole) = encode(0, ranges(done.clone()), MAX_BYTES);
        assert!(!whole && inline.len() <= MAX_BYTES);
        let (record, whole) = encode(0, ranges(done.clone()), SAVED_MAX_BYTES);
        assert!(whole);
        let m = pointing(inline.clone(), 2, 77);
        assert!(m.len() < 4_096, "{}", m.len());
        assert_eq!(saved_at(&m), Some((2, 77)));
        assert_eq!(decode(&m, 0), decode(&inline, 0), "a record not read names nothing");
        let read = with_saved(&m, &record);
        assert_eq!(saved_at(&read), None);
        let named: Vec<i64> = decode(&read, 0).iter().flat_map(|(lo, hi)| *lo..=*hi).collect();
        assert_eq!(named, done);
    }

    #[test]
    fn a_record_saved_for_an_earlier_offset_counts_past_the_committed_one_only() {
        let m = pointing(inline(100, [110]), 0, 1);
        let earlier = with_saved(&m, &inline(90, [95, 100, 101, 102, 120]));
        assert_eq!(decode(&earlier, 100), vec![(101, 102), (110, 110), (120, 120)]);
        let later = with_saved(&m, &inline(105, [120]));
        assert_eq!(
            decode(&later, 100),
            vec![(110, 110)],
            "written for a later offset: not believed"
        );
        assert!(decode(&earlier, 99).is_empty(), "the metadata itself is for offset 100");
    }

    #[test]
    fn a_corrupt_repeat_cannot_take_the_memory() {
        let ranges = decode("ew2:0:B*zzzzzzzzz.", 0);
        assert_eq!(ranges.len(), MAX_RANGES);
    }

    proptest! {
        /// Whatever is decoded was done: no offset is skipped that was not finished.
        #[test]
        fn decoded_offsets_were_done(
            committed in 0i64..1_000_000,
            runs in prop::collection::vec((prop_oneof![0i64..4, 0i64..100_000], prop_oneof![1i64..4, 1i64..600]), 0..1_000),
        ) {
            // Runs done, each after a gap: short ones interleaved, and long ones.
            let mut done_abs = Vec::new();
            let mut at = committed;
            for (gap, len) in runs {
                done_abs.extend(at + gap..at + gap + len);
                at += gap + len;
            }
            let ranges = decode(&inline(committed, done_abs.clone()), committed);
            for (lo, hi) in &ranges {
                for o in *lo..=*hi {
                    prop_assert!(o > committed && done_abs.binary_search(&o).is_ok());
                }
            }
            if inline(committed, done_abs.clone()).len() < MAX_BYTES {
                let named: usize = ranges.iter().map(|(lo, hi)| (hi - lo + 1) as usize).sum();
                prop_assert_eq!(named, done_abs.iter().filter(|o| **o > committed).count());
            }
        }
    }
}
