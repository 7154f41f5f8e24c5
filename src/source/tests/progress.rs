//! Offsets done past the committed one, committed as metadata and honoured by the next owner.

use super::{assigned, deliver, done, revoked, source, Call, Jobs, IN};
use crate::kafka::Assignment;
use crate::source::done::MAX_BYTES;

/// The metadata committed with `offset` when `done` are done past it.
fn encode(offset: i64, done: impl IntoIterator<Item = i64>) -> String {
    crate::source::done::encode(offset, crate::source::done::ranges(done), MAX_BYTES).0
}

fn committed(partition: i32, offset: i64, metadata: &str) -> Assignment {
    Assignment::Committed(vec![(IN.to_owned(), partition, offset, metadata.to_owned())])
}

#[test]
fn offsets_done_behind_an_unfinished_one_are_committed_with_the_offset_before_it() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    let t = deliver(&mut src, &mut jobs, 0, &[0, 1, 2, 3, 4]);
    src.commit_progress();
    assert_eq!(fake.take(), [], "nothing done: nothing to commit");
    for i in [1, 3, 4] {
        done(&mut src, &mut jobs, t[i]);
    }
    src.commit_progress();
    // Stored with the offset before the first (-1: resume at 0) as well as committed.
    assert_eq!(
        fake.take(),
        [Call::Store(0, -1), Call::Progress(0, 0, encode(0, [1, 3, 4]))]
    );
    done(&mut src, &mut jobs, t[0]);
    src.commit_progress();
    assert_eq!(
        fake.take(),
        [
            Call::Store(0, 1),
            Call::Store(0, 1),
            Call::Progress(0, 2, encode(2, [3, 4]))
        ]
    );
}

#[test]
fn the_next_owner_completes_what_the_metadata_names_without_doing_it_again() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    src.rebalance(&mut jobs, committed(0, 10, &encode(10, [11, 12, 14])));
    let started = deliver(&mut src, &mut jobs, 0, &[10, 11, 12, 13, 14, 15]);
    assert_eq!(
        jobs.started,
        [(0, 10), (0, 13), (0, 15)],
        "11, 12 and 14 were done by the last owner"
    );
    assert_eq!(fake.take(), []);
    done(&mut src, &mut jobs, started[0]);
    assert_eq!(
        fake.take(),
        [Call::Store(0, 12)],
        "10 done: the prefix runs through 11 and 12"
    );
    done(&mut src, &mut jobs, started[1]);
    done(&mut src, &mut jobs, started[2]);
    assert_eq!(fake.take(), [Call::Store(0, 14), Call::Store(0, 15)]);
}

#[test]
fn metadata_of_another_offset_or_an_earlier_assignment_is_not_believed() {
    let mut jobs = Jobs::default();
    let (mut src, _) = source(&mut jobs, &[0, 1]);
    // Written for offset 9, committed with 10: not believed.
    src.rebalance(&mut jobs, committed(0, 10, &encode(9, [11])));
    // Read for an assignment that is over: forgotten with it.
    src.rebalance(&mut jobs, committed(1, 0, &encode(0, [1])));
    src.rebalance(&mut jobs, revoked(&[1]));
    src.rebalance(&mut jobs, assigned(&[1]));
    deliver(&mut src, &mut jobs, 0, &[10, 11]);
    deliver(&mut src, &mut jobs, 1, &[0, 1]);
    assert_eq!(jobs.started, [(0, 10), (0, 11), (1, 0), (1, 1)]);
}

#[test]
fn offsets_done_past_what_the_metadata_names_are_saved_and_the_commit_names_the_save() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    let offsets: Vec<i64> = (0..30_000).collect();
    let t = deliver(&mut src, &mut jobs, 0, &offsets);
    // Eight in thirteen done behind offset 0: 30,000 offsets, more than 4,000 bytes name.
    let (finished, open): (Vec<i64>, Vec<i64>) = (1..30_000).partition(|o| o * 7_919 % 13 < 8);
    for o in &finished {
        done(&mut src, &mut jobs, t[*o as usize]);
    }
    fake.take();
    src.commit_progress();
    let calls = fake.take();
    let [Call::Save(0, record), Call::Store(0, -1), Call::Progress(0, 0, first)] = &calls[..] else {
        panic!("{calls:?}")
    };
    assert_eq!(
        first,
        &encode(0, finished.clone()),
        "no save made yet: the metadata alone"
    );
    assert!(crate::source::done::saved_at(first).is_none());
    src.commit_progress();
    let calls = fake.take();
    let [Call::Store(0, -1), Call::Progress(0, 0, second)] = &calls[..] else {
        panic!("no second save within a second of the first: {calls:?}")
    };
    assert_eq!(
        crate::source::done::saved_at(second),
        Some((0, 0)),
        "the first save is named"
    );
    let read = crate::source::done::with_saved(second, record);
    let named: Vec<i64> = (crate::source::done::decode(&read, 0).iter())
        .flat_map(|(lo, hi)| *lo..=*hi)
        .collect();
    assert_eq!(
        named, finished,
        "the metadata and the record read name every offset done"
    );
    // The head last: the prefix moves once.
    for o in open.into_iter().rev().chain([0]) {
        done(&mut src, &mut jobs, t[o as usize]);
    }
    fake.take();
    src.commit_progress();
    assert_eq!(
        fake.take(),
        [],
        "all done and stored: nothing past the committed offset"
    );
}

#[test]
fn offsets_known_done_are_committed_until_they_are_read_again() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0, 1]);
    // Partition 0: 2 to 9 done here behind 0 and 1, then the partition is revoked and given back.
    let t = deliver(&mut src, &mut jobs, 0, &(0..10).collect::<Vec<_>>());
    for ticket in &t[2..] {
        done(&mut src, &mut jobs, *ticket);
    }
    src.rebalance(&mut jobs, revoked(&[0, 1]));
    src.rebalance(&mut jobs, assigned(&[0, 1]));
    // Partition 1: the last owner committed 12 to 20 done past 10.
    src.rebalance(&mut jobs, committed(1, 10, &encode(10, 12..=20)));
    fake.take();
    // Only the first record of each is read again before the next commit.
    deliver(&mut src, &mut jobs, 0, &[0]);
    deliver(&mut src, &mut jobs, 1, &[10]);
    src.commit_progress();
    assert_eq!(
        fake.take(),
        [
            Call::Store(0, -1),
            Call::Store(1, 9),
            Call::Progress(0, 0, encode(0, 2..10)),
            Call::Progress(1, 10, encode(10, 12..=20))
        ],
        "what was known done is still named"
    );
}

#[test]
fn the_metadata_stored_with_the_offset_is_the_last_committed() {
    // librdkafka commits the offset stored, with its metadata, when the partition is revoked.
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    let t = deliver(&mut src, &mut jobs, 0, &[0, 1, 2, 3]);
    done(&mut src, &mut jobs, t[0]);
    assert_eq!(fake.stored_metadata(0), "", "0 done, none past it");
    // 1 takes long; 2 and 3 are done behind it, and the stored offset does not move.
    done(&mut src, &mut jobs, t[2]);
    done(&mut src, &mut jobs, t[3]);
    src.commit_progress();
    let committed = encode(1, [2, 3]);
    assert!(fake.take().contains(&Call::Progress(0, 1, committed.clone())));
    assert_eq!(
        fake.stored_metadata(0),
        committed,
        "a revocation would commit what the last commit named"
    );
}
