//! The source against a fake consumer: what is stored, sought, paused and committed, and which
//! records a role is given, through assignments, revocations, gaps and shutdown. No broker.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rdkafka::message::OwnedMessage;
use rdkafka::Timestamp;
use tokio::sync::mpsc;

use super::*;
use crate::kafka::Assignment;

const IN: &str = "in";

/// What the source asked of the consumer.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Store(i32, i64),
    Seek(i32, i64),
    Pause(Vec<i32>, bool),
    Commit,
    /// A commit of the offsets done past the committed one: partition, offset, metadata.
    Progress(i32, i64, String),
    /// A save of a partition's progress: partition, text. It is saved at once, at offset `n` of
    /// partition 0 of the progress topic for the `n`th save.
    Save(i32, String),
}

/// A consumer that records what it is asked and delivers what the test sends it.
struct Fake {
    calls: Mutex<Vec<Call>>,
    records: tokio::sync::Mutex<mpsc::UnboundedReceiver<OwnedMessage>>,
    /// Saves made so far.
    saves: std::sync::atomic::AtomicI64,
    /// Per partition, the metadata stored last with its offset.
    metadata: Mutex<HashMap<i32, String>>,
}

impl Fake {
    fn new() -> (Arc<Fake>, mpsc::UnboundedSender<OwnedMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let fake = Fake {
            calls: Mutex::new(Vec::new()),
            records: tokio::sync::Mutex::new(rx),
            saves: Default::default(),
            metadata: Default::default(),
        };
        (Arc::new(fake), tx)
    }

    fn note(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn stored_metadata(&self, partition: i32) -> String {
        self.metadata
            .lock()
            .unwrap()
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }

    /// The calls made since the last time this was asked.
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }
}

impl Input for Fake {
    fn store(&self, _: &str, partition: i32, offset: i64, metadata: &str) -> anyhow::Result<()> {
        self.note(Call::Store(partition, offset));
        self.metadata.lock().unwrap().insert(partition, metadata.to_owned());
        Ok(())
    }

    fn seek(&self, _: &str, partition: i32, offset: i64) -> anyhow::Result<()> {
        self.note(Call::Seek(partition, offset));
        Ok(())
    }

    fn pause(&self, partitions: &[(&str, i32)], pause: bool) -> anyhow::Result<()> {
        let mut ps: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
        ps.sort_unstable();
        self.note(Call::Pause(ps, pause));
        Ok(())
    }

    fn commit(&self) -> anyhow::Result<()> {
        self.note(Call::Commit);
        Ok(())
    }

    fn commit_progress(&self, progress: &[(&str, i32, i64, String)]) -> anyhow::Result<()> {
        for (_, partition, offset, metadata) in progress {
            self.note(Call::Progress(*partition, *offset, metadata.clone()));
        }
        Ok(())
    }

    fn save(&self, _: &str, partition: i32, text: String) -> saved::Saving {
        self.note(Call::Save(partition, text));
        let n = self.saves.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(std::future::ready(Some((0, n))))
    }
}

impl Receive for Fake {
    async fn recv(&self) -> anyhow::Result<OwnedMessage> {
        match self.records.lock().await.recv().await {
            Some(m) => Ok(m),
            None => std::future::pending().await,
        }
    }
}

fn record(partition: i32, offset: i64) -> OwnedMessage {
    let payload = Some(b"{}".to_vec());
    OwnedMessage::new(
        payload,
        None,
        IN.into(),
        Timestamp::NotAvailable,
        partition,
        offset,
        None,
    )
}

/// A role that starts every record it is given and finishes it when the test reports it done
/// (`Err` stops the loop). Records at offsets in `aside` are set aside; those in `park` are held
/// unstarted.
#[derive(Default)]
struct Jobs {
    started: Vec<(i32, i64)>,
    in_flight: HashSet<Ticket>,
    parked: HashMap<Tp, Vec<Ticket>>,
    aside: HashSet<i64>,
    park: HashSet<i64>,
    abandoned: Vec<i32>,
    /// What the rebalances told it, in order.
    told: Vec<String>,
    /// Told of every record started (for the loop's tests).
    seen: Option<mpsc::UnboundedSender<Ticket>>,
}

impl Work for Jobs {
    type Report = Result<Ticket, String>;
    const ROLE: &'static str = "test";

    fn record(&mut self, src: &mut Source, t: Ticket, _: &OwnedMessage) -> anyhow::Result<()> {
        if self.aside.remove(&t.offset) {
            src.set_aside(t, "b");
        } else if self.park.contains(&t.offset) {
            self.parked.entry(t.tp).or_default().push(t);
        } else {
            self.started.push((t.tp.1, t.offset));
            self.in_flight.insert(t);
            if let Some(seen) = &self.seen {
                let _ = seen.send(t);
            }
        }
        Ok(())
    }

    fn report(&mut self, src: &mut Source, r: Self::Report) -> anyhow::Result<()> {
        let t = r.map_err(anyhow::Error::msg)?;
        self.in_flight.remove(&t);
        src.complete(t);
        Ok(())
    }

    fn holds(&self, t: &Ticket) -> bool {
        self.in_flight.contains(t) || self.parked.get(&t.tp).is_some_and(|p| p.contains(t))
    }

    fn release(&mut self, tp: Tp) -> Vec<i64> {
        let parked = self.parked.remove(&tp).unwrap_or_default();
        parked.iter().map(|t| t.offset).collect()
    }

    fn abandon(&mut self, tp: Tp) {
        self.told.push(format!("abandon {}", tp.1));
        self.abandoned.push(tp.1);
        self.in_flight.retain(|t| t.tp != tp);
    }

    fn revoked(&mut self, _: &mut Source) {
        self.told.push("revoked".into());
    }

    fn assigned(&mut self, _: &mut Source) {
        self.told.push("assigned".into());
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        None
    }

    fn timer(&mut self, _: &mut Source) {}

    fn turn(&mut self, _: &mut Source) {}

    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn shutdown(&mut self, _: &mut Source) {}

    fn closed(&mut self) {}
}

fn assigned(ps: &[i32]) -> Assignment {
    Assignment::Assigned(ps.iter().map(|p| (IN.to_owned(), *p)).collect())
}

fn revoked(ps: &[i32]) -> Assignment {
    Assignment::Revoked(ps.iter().map(|p| (IN.to_owned(), *p)).collect())
}

/// A source on topic `in` with `ps` assigned, and the fake behind it.
fn source(jobs: &mut Jobs, ps: &[i32]) -> (Source, Arc<Fake>) {
    let (fake, _) = Fake::new();
    let mut src = Source::new(fake.clone(), vec![IN.to_owned()]);
    src.rebalance(jobs, assigned(ps));
    fake.take();
    (src, fake)
}

/// Delivers offsets `offsets` of `partition`, returning the tickets of the records started.
fn deliver(src: &mut Source, jobs: &mut Jobs, partition: i32, offsets: &[i64]) -> Vec<Ticket> {
    let before = jobs.in_flight.clone();
    for o in offsets {
        src.receive(jobs, &record(partition, *o)).unwrap();
    }
    let mut new: Vec<Ticket> = jobs.in_flight.difference(&before).copied().collect();
    new.sort_by_key(|t| t.offset);
    new
}

fn done(src: &mut Source, jobs: &mut Jobs, t: Ticket) {
    jobs.report(src, Ok(t)).unwrap();
    src.store_moved();
}

#[test]
fn an_offset_is_stored_only_once_every_record_before_it_is_done() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    let t = deliver(&mut src, &mut jobs, 0, &[0, 1, 2]);
    done(&mut src, &mut jobs, t[1]);
    assert_eq!(fake.take(), [], "1 is done, 0 is not");
    done(&mut src, &mut jobs, t[0]);
    done(&mut src, &mut jobs, t[2]);
    assert_eq!(fake.take(), [Call::Store(0, 1), Call::Store(0, 2)]);
}

#[test]
fn a_skipped_record_is_read_again_before_any_after_it_is_started() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    deliver(&mut src, &mut jobs, 0, &[0, 2]);
    assert_eq!(fake.take(), [Call::Seek(0, 1)]);
    assert_eq!(jobs.started, [(0, 0)], "2 waits for 1");
    deliver(&mut src, &mut jobs, 0, &[1, 2]);
    assert_eq!(jobs.started, [(0, 0), (0, 1), (0, 2)]);
}

#[test]
fn a_record_redelivered_while_its_work_goes_on_is_not_started_again() {
    let mut jobs = Jobs::default();
    let (mut src, _) = source(&mut jobs, &[0]);
    deliver(&mut src, &mut jobs, 0, &[0, 1]);
    deliver(&mut src, &mut jobs, 0, &[0, 1]);
    assert_eq!(jobs.started, [(0, 0), (0, 1)]);
}

#[test]
fn work_in_flight_when_its_partition_comes_back_is_adopted_and_stores_for_the_new_assignment() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    let first = deliver(&mut src, &mut jobs, 0, &[0, 1]);
    src.rebalance(&mut jobs, revoked(&[0]));
    src.rebalance(&mut jobs, assigned(&[0]));
    let again = deliver(&mut src, &mut jobs, 0, &[0, 1, 2]);
    assert_eq!(jobs.started, [(0, 0), (0, 1), (0, 2)], "0 and 1 are not redone");
    assert_eq!(again.len(), 1);
    fake.take();
    done(&mut src, &mut jobs, first[0]);
    done(&mut src, &mut jobs, first[1]);
    done(&mut src, &mut jobs, again[0]);
    assert_eq!(fake.take(), [Call::Store(0, 0), Call::Store(0, 1), Call::Store(0, 2)]);
}

#[test]
fn work_that_finished_while_its_partition_was_away_is_stored_when_it_comes_back() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    let first = deliver(&mut src, &mut jobs, 0, &[0]);
    src.rebalance(&mut jobs, revoked(&[0]));
    done(&mut src, &mut jobs, first[0]);
    assert_eq!(fake.take(), [], "the partition is not ours: nothing is stored");
    src.rebalance(&mut jobs, assigned(&[0]));
    fake.take();
    deliver(&mut src, &mut jobs, 0, &[0]);
    assert_eq!(fake.take(), [Call::Store(0, 0)], "stored at once, not redone");
    assert_eq!(jobs.started, [(0, 0)]);
}

#[test]
fn a_partition_gone_to_another_replica_is_abandoned_and_redone_if_it_comes_back() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0, 1]);
    let first = deliver(&mut src, &mut jobs, 0, &[0]);
    src.rebalance(&mut jobs, revoked(&[0, 1]));
    src.rebalance(&mut jobs, assigned(&[1]));
    assert_eq!(jobs.abandoned, [0]);
    fake.take();
    src.complete(first[0]);
    src.store_moved();
    assert_eq!(
        fake.take(),
        [],
        "late work of a partition gone elsewhere vouches for nothing"
    );
    src.rebalance(&mut jobs, revoked(&[1]));
    src.rebalance(&mut jobs, assigned(&[0, 1]));
    deliver(&mut src, &mut jobs, 0, &[0]);
    assert_eq!(
        jobs.started,
        [(0, 0), (0, 0)],
        "done again: the other replica may not have"
    );
}

/// The roles hold what work finished from `revoked` to `assigned` (its offsets cannot be stored
/// meanwhile): by `assigned` they must know which partitions went elsewhere.
#[test]
fn a_rebalance_ends_once_the_partitions_gone_elsewhere_are_abandoned() {
    let mut jobs = Jobs::default();
    let (mut src, _) = source(&mut jobs, &[0, 1]);
    assert_eq!(jobs.told, ["assigned"]);
    src.rebalance(&mut jobs, revoked(&[0, 1]));
    src.rebalance(&mut jobs, assigned(&[1]));
    assert_eq!(jobs.told, ["assigned", "revoked", "abandon 0", "assigned"]);
}

#[test]
fn a_record_set_aside_holds_the_offsets_after_it_until_it_is_read_again_and_done() {
    let mut jobs = Jobs {
        aside: HashSet::from([1]),
        ..Jobs::default()
    };
    let (mut src, fake) = source(&mut jobs, &[0]);
    let t = deliver(&mut src, &mut jobs, 0, &[0, 1, 2]);
    done(&mut src, &mut jobs, t[0]);
    done(&mut src, &mut jobs, t[1]);
    assert_eq!(fake.take(), [Call::Store(0, 0)], "2 waits behind 1, set aside");
    src.read_aside_again(|w| w != "b");
    assert_eq!(fake.take(), [], "its workspace has no room yet");
    src.read_aside_again(|_| true);
    assert_eq!(fake.take(), [Call::Seek(0, 1)]);
    let again = deliver(&mut src, &mut jobs, 0, &[1, 2]);
    assert_eq!(jobs.started, [(0, 0), (0, 2), (0, 1)], "2 is not redone");
    done(&mut src, &mut jobs, again[0]);
    assert_eq!(fake.take(), [Call::Store(0, 2)]);
}

#[test]
fn records_held_unstarted_are_given_back_on_revocation_and_started_when_redelivered() {
    let mut jobs = Jobs {
        park: HashSet::from([1]),
        aside: HashSet::from([2]),
        ..Jobs::default()
    };
    let (mut src, _) = source(&mut jobs, &[0]);
    deliver(&mut src, &mut jobs, 0, &[0, 1, 2]);
    src.rebalance(&mut jobs, revoked(&[0]));
    src.rebalance(&mut jobs, assigned(&[0]));
    jobs.park.clear();
    deliver(&mut src, &mut jobs, 0, &[0, 1, 2]);
    assert_eq!(jobs.started, [(0, 0), (0, 1), (0, 2)], "0 adopted; 1 and 2 started now");
}

/// A record of `partition` at `offset` with a payload of `bytes`.
fn sized(partition: i32, offset: i64, bytes: usize) -> OwnedMessage {
    record(partition, offset).set_payload(Some(vec![b' '; bytes]))
}

/// A full role's records wait, in their order, and its partitions are paused only once many wait
/// (a pause makes librdkafka drop what it prefetched). They are received once it has room; a
/// record taken while others wait goes behind them.
#[test]
fn a_full_role_s_records_wait_and_its_partitions_pause_only_once_many_do() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    assert!(src.pause_all(true) && src.paused());
    src.take(&mut jobs, record(0, 0)).unwrap();
    src.take(&mut jobs, sized(0, 1, waiting::MAX_BYTES / 2)).unwrap();
    assert!(src.pause_all(true) && src.reading());
    assert_eq!((jobs.started.len(), fake.take()), (0, vec![]), "waiting, not paused");
    src.take(&mut jobs, sized(0, 2, waiting::MAX_BYTES / 2)).unwrap();
    assert!(
        !src.reading(),
        "many wait: no more is taken until the partitions are paused"
    );
    assert!(
        src.pause_all(true) && src.reading(),
        "paused: polled for its rebalances"
    );
    assert_eq!(fake.take(), [Call::Pause(vec![0], true)]);
    assert!(!src.has_waiting(), "still full");
    assert!(src.pause_all(false));
    assert_eq!(fake.take(), [Call::Pause(vec![0], false)]);
    assert!(!src.reading(), "the records waiting go first");
    src.receive_waiting(&mut jobs).unwrap();
    src.take(&mut jobs, record(0, 3)).unwrap();
    while src.has_waiting() {
        src.receive_waiting(&mut jobs).unwrap();
    }
    assert_eq!(jobs.started, [(0, 0), (0, 1), (0, 2), (0, 3)]);
    src.take(&mut jobs, record(0, 4)).unwrap();
    assert_eq!(jobs.started.len(), 5, "none waits: received at once");
}

/// A revocation, or a seek that reads a partition again, drops its records waiting: they come
/// again. Those of other partitions still wait.
#[test]
fn records_waiting_for_a_partition_revoked_or_read_again_are_dropped() {
    let mut jobs = Jobs {
        aside: HashSet::from([0]),
        ..Jobs::default()
    };
    let (mut src, fake) = source(&mut jobs, &[0, 1, 2]);
    src.take(&mut jobs, record(2, 0)).unwrap();
    assert!(src.pause_all(true));
    for (p, o) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        src.take(&mut jobs, record(p, o)).unwrap();
    }
    src.rebalance(&mut jobs, revoked(&[0]));
    src.read_aside_again(|_| true);
    assert_eq!(fake.take(), [Call::Seek(2, 0)], "2@0 was set aside");
    src.pause_all(false);
    while src.has_waiting() {
        src.receive_waiting(&mut jobs).unwrap();
    }
    assert_eq!(jobs.started, [(1, 0)]);
}

/// Full, with so many records waiting that every partition is paused.
fn full_long(src: &mut Source, jobs: &mut Jobs) -> bool {
    src.pause_all(true);
    src.take(jobs, sized(0, 1_000_000, waiting::MAX_BYTES)).unwrap();
    src.pause_all(true)
}

#[test]
fn a_full_role_pauses_every_partition_and_one_waiting_on_its_own_stays_paused() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0, 1]);
    src.hold((0, 1));
    assert_eq!(fake.take(), [Call::Pause(vec![1], true)]);
    assert!(full_long(&mut src, &mut jobs) && src.paused());
    assert_eq!(fake.take(), [Call::Pause(vec![0], true)]);
    src.release_holds(&[(0, 1)]);
    assert_eq!(fake.take(), [], "still full");
    src.hold((0, 1));
    assert!(src.pause_all(false));
    assert_eq!(fake.take(), [Call::Pause(vec![0], false)], "1 still waits on its own");
    src.release_holds(&[(0, 1)]);
    assert_eq!(fake.take(), [Call::Pause(vec![1], false)]);
}

#[test]
fn a_new_assignment_starts_paused_while_the_role_is_full_and_flowing_otherwise() {
    let mut jobs = Jobs::default();
    let (mut src, fake) = source(&mut jobs, &[0]);
    src.hold((0, 0));
    full_long(&mut src, &mut jobs);
    fake.take();
    src.rebalance(&mut jobs, revoked(&[0]));
    src.rebalance(&mut jobs, assigned(&[0, 2]));
    assert_eq!(fake.take(), [Call::Pause(vec![0, 2], true)]);
    src.pause_all(false);
    assert_eq!(
        fake.take(),
        [Call::Pause(vec![0, 2], false)],
        "0's hold went with the revocation"
    );
}

mod looping;
mod progress;
