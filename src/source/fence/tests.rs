use proptest::prelude::*;

use super::*;

#[test]
fn work_in_flight_when_the_partition_comes_back_is_adopted() {
    let mut f: Fence<i32> = Fence::default();
    f.assign(0);
    let g1 = f.generation(0);
    assert_eq!(f.arrive(0, 10), Arrival::New(g1));
    assert_eq!(f.arrive(0, 11), Arrival::New(g1));
    f.revoke(0, &[]);
    f.assign(0);
    assert_eq!(f.arrive(0, 10), Arrival::Adopted, "not done again");
    assert_eq!(f.arrive(0, 11), Arrival::Adopted);
    assert_eq!(f.arrive(0, 11), Arrival::Adopted, "nor when read once more");
    assert_eq!(f.complete(0, 11, g1), None, "10 is still in flight");
    assert_eq!(
        f.complete(0, 10, g1),
        Some(11),
        "the old generation's work completes the new"
    );
}

/// Offsets 10 to 12 received, 11 done behind 10, then the partition revoked; with the first generation.
fn revoked_with_10_in_flight_and_11_done() -> (Fence<i32>, u64) {
    let mut f: Fence<i32> = Fence::default();
    f.assign(0);
    let g1 = f.generation(0);
    for o in [10, 11, 12] {
        f.arrive(0, o);
    }
    assert_eq!(f.complete(0, 11, g1), None, "done, waiting behind 10");
    f.revoke(0, &[]);
    (f, g1)
}

#[test]
fn work_done_after_the_revocation_is_released_when_redelivered() {
    let (mut f, g1) = revoked_with_10_in_flight_and_11_done();
    assert_eq!(f.complete(0, 12, g1), None, "nothing is stored for a revoked partition");
    f.assign(0);
    let g2 = f.generation(0);
    assert_eq!(f.arrive(0, 10), Arrival::Adopted);
    assert_eq!(f.arrive(0, 11), Arrival::Done(None), "done before, behind 10");
    assert_eq!(f.arrive(0, 12), Arrival::Done(None));
    assert_eq!(f.arrive(0, 13), Arrival::New(g2));
    assert_eq!(f.complete(0, 10, g1), Some(12));
    assert_eq!(f.complete(0, 13, g2), Some(13));
}

#[test]
fn work_abandoned_when_the_partition_went_elsewhere_is_done_again_if_it_comes_back() {
    let (mut f, _) = revoked_with_10_in_flight_and_11_done();
    f.abandon(0);
    f.assign(0);
    let g2 = f.generation(0);
    assert_eq!(
        f.arrive(0, 10),
        Arrival::New(g2),
        "abandoned: done again, not waited for"
    );
    assert_eq!(f.arrive(0, 11), Arrival::Done(None), "done here before: still released");
    assert_eq!(f.arrive(0, 12), Arrival::New(g2));
    assert_eq!(f.complete(0, 10, g2), Some(11));
    assert_eq!(f.complete(0, 12, g2), Some(12));
}

#[test]
fn dropped_work_is_done_again_and_a_moved_on_partition_forgets() {
    let mut f: Fence<i32> = Fence::default();
    f.assign(0);
    let g1 = f.generation(0);
    f.arrive(0, 10);
    f.arrive(0, 11);
    f.revoke(0, &[11]);
    f.assign(0);
    let g2 = f.generation(0);
    assert_eq!(f.arrive(0, 10), Arrival::Adopted);
    assert_eq!(f.arrive(0, 11), Arrival::New(g2), "its work was dropped");

    // Another replica committed through 20 meanwhile: what was left below it is forgotten.
    f.revoke(0, &[]);
    f.assign(0);
    let g3 = f.generation(0);
    assert_eq!(f.arrive(0, 21), Arrival::New(g3));
    assert_eq!(f.complete(0, 10, g1), None);
    assert_eq!(f.complete(0, 11, g2), None);
    assert!(f.left[&0].is_empty());
}

#[test]
fn work_abandoned_earlier_vouches_for_nothing_later_work_does() {
    // A verifier's check of 10, cancelled when the partition went elsewhere, still reports (having
    // published nothing). Meanwhile the partition came back and 10 is being checked again.
    let mut f: Fence<i32> = Fence::default();
    f.assign(0);
    let g1 = f.generation(0);
    assert_eq!(f.arrive(0, 10), Arrival::New(g1));
    f.revoke(0, &[]);
    f.abandon(0);
    f.assign(0);
    let g2 = f.generation(0);
    assert_eq!(f.arrive(0, 10), Arrival::New(g2), "abandoned: done again");
    f.revoke(0, &[]);
    assert_eq!(f.complete(0, 10, g1), None);
    f.assign(0);
    assert_eq!(f.arrive(0, 10), Arrival::Adopted, "g2's work is still in flight");
    assert_eq!(f.complete(0, 10, g1), None, "the cancelled work of g1 stores nothing");
    assert_eq!(f.complete(0, 10, g2), Some(10), "g2's work does");
}

#[derive(Debug, Clone)]
enum Step {
    Deliver,
    /// Start the parked record at this index (mod their count).
    Start(usize),
    /// Finish the work in flight at this index (mod their count).
    Finish(usize),
    Rebalance,
    /// The partition goes to another replica and comes back: work in flight is cancelled.
    Away,
    /// Cancelled work at this index (mod their count) reports, having done nothing.
    Late(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Deliver),
        2 => any::<usize>().prop_map(Step::Start),
        4 => any::<usize>().prop_map(Step::Finish),
        1 => Just(Step::Rebalance),
        1 => Just(Step::Away),
        2 => any::<usize>().prop_map(Step::Late),
    ]
}

/// A consumer of one partition of `n` records that reads from the last stored offset after each
/// rebalance; a third of the records wait parked before their work starts (as the verifier's
/// heads do) and are dropped on revocation. Work cancelled when the partition went elsewhere
/// still reports, having done nothing (as the verifier's checks do).
struct Model {
    f: Fence<i32>,
    n: i64,
    next: i64,
    stored: Option<i64>,
    parked: Vec<(i64, u64)>,
    running: Vec<(i64, u64)>,
    cancelled: Vec<(i64, u64)>,
    done: Vec<bool>,
}

impl Model {
    fn store(&mut self, s: Option<i64>) -> Result<(), TestCaseError> {
        if let Some(s) = s {
            prop_assert!(
                self.stored.is_none_or(|prev| s > prev),
                "stored {s} after {:?}",
                self.stored
            );
            for o in 0..=s {
                prop_assert!(self.done[o as usize], "stored {s} with {o} never done");
            }
            self.stored = Some(s);
        }
        Ok(())
    }

    fn step(&mut self, s: Step) -> Result<(), TestCaseError> {
        match s {
            Step::Deliver if self.next < self.n => {
                let o = self.next;
                self.next += 1;
                match self.f.arrive(0, o) {
                    Arrival::New(g) if o % 3 == 0 => self.parked.push((o, g)),
                    Arrival::New(g) => self.running.push((o, g)),
                    Arrival::Adopted => {}
                    Arrival::Done(s) => self.store(s)?,
                }
            }
            Step::Start(i) if !self.parked.is_empty() => {
                let w = self.parked.remove(i % self.parked.len());
                self.running.push(w);
            }
            Step::Finish(i) if !self.running.is_empty() => {
                let (o, g) = self.running.remove(i % self.running.len());
                self.done[o as usize] = true;
                let s = self.f.complete(0, o, g);
                self.store(s)?;
            }
            Step::Rebalance | Step::Away => {
                let dropped: Vec<i64> = self.parked.drain(..).map(|(o, _)| o).collect();
                self.f.revoke(0, &dropped);
                if matches!(s, Step::Away) {
                    self.f.abandon(0);
                    self.cancelled.append(&mut self.running);
                }
                self.f.assign(0);
                self.next = self.stored.map_or(0, |s| s + 1);
            }
            Step::Late(i) if !self.cancelled.is_empty() => {
                let (o, g) = self.cancelled.remove(i % self.cancelled.len());
                let s = self.f.complete(0, o, g);
                self.store(s)?;
            }
            _ => {}
        }
        Ok(())
    }
}

proptest! {
    /// Across rebalances, an offset is stored only once the work of it and of every offset before
    /// it is done, and once the work runs out every offset is stored.
    #[test]
    fn never_stores_past_undone_work_and_always_finishes(steps in proptest::collection::vec(step(), 0..200)) {
        let n = 30;
        let mut m = Model { f: Fence::default(), n, next: 0, stored: None, parked: vec![], running: vec![], cancelled: vec![], done: vec![false; n as usize] };
        m.f.assign(0);
        for s in steps {
            m.step(s)?;
        }
        while m.stored != Some(n - 1) {
            let before = (m.next, m.parked.len(), m.running.len(), m.stored);
            m.step(Step::Deliver)?;
            m.step(Step::Start(0))?;
            m.step(Step::Finish(0))?;
            prop_assert!(before != (m.next, m.parked.len(), m.running.len(), m.stored), "stalled at {:?}", m.stored);
        }
    }
}
