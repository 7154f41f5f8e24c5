//! The loop (`run`) on a fake consumer: shutdown, the grace period, a report that fails.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::OwnedMessage;
use tokio::sync::mpsc;

use super::{assigned, record, Call, Fake, Jobs, IN};
use crate::source::{run, Parts, Ticket};

/// The loop with `jobs` on a fake consumer, partition 0 assigned.
struct Looping {
    fake: Arc<Fake>,
    records: mpsc::UnboundedSender<OwnedMessage>,
    reports: mpsc::Sender<Result<Ticket, String>>,
    seen: mpsc::UnboundedReceiver<Ticket>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn looping(grace: Duration) -> Looping {
    let (fake, records) = Fake::new();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (assign_tx, assignments) = mpsc::unbounded_channel();
    assign_tx.send(assigned(&[0])).unwrap();
    let (reports, reports_rx) = mpsc::channel(16);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let parts = Parts {
        consumer: fake.clone(),
        topics: vec![IN.to_owned()],
        work: Jobs {
            seen: Some(seen_tx),
            ..Jobs::default()
        },
        assignments,
        reports: reports_rx,
        grace,
    };
    let run = tokio::spawn(run(parts, async move { stopped.await.unwrap_or(()) }));
    Looping {
        fake,
        records,
        reports,
        seen,
        stop: Some(stop),
        run,
    }
}

impl Looping {
    /// Delivers `offsets` and waits until each is started.
    async fn started(&mut self, offsets: &[i64]) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        for o in offsets {
            self.records.send(record(0, *o)).unwrap();
            let t = tokio::time::timeout(Duration::from_secs(10), self.seen.recv()).await;
            tickets.push(t.expect("the record is started").unwrap());
        }
        tickets
    }

    async fn ended(self) -> (anyhow::Result<()>, Vec<Call>) {
        let result = tokio::time::timeout(Duration::from_secs(600), self.run).await;
        (result.expect("the loop ends").unwrap(), self.fake.take())
    }
}

#[tokio::test]
async fn shutdown_finishes_the_work_in_flight_pauses_the_input_takes_no_new_record_and_commits() {
    let mut l = looping(Duration::from_secs(60));
    let t = l.started(&[0, 1]).await;
    l.stop.take().unwrap().send(()).unwrap();
    l.records.send(record(0, 2)).unwrap();
    for t in t {
        l.reports.send(Ok(t)).await.unwrap();
    }
    let mut seen = std::mem::replace(&mut l.seen, mpsc::unbounded_channel().1);
    let (result, calls) = l.ended().await;
    result.unwrap();
    assert!(seen.try_recv().is_err(), "2 came after the shutdown: not started");
    assert!(
        calls.contains(&Call::Pause(vec![0], true)),
        "paused at the shutdown: {calls:?}"
    );
    let stores: Vec<&Call> = calls.iter().filter(|c| matches!(c, Call::Store(..))).collect();
    assert_eq!(stores, [&Call::Store(0, 0), &Call::Store(0, 1)]);
    assert_eq!(calls.last(), Some(&Call::Commit));
}

#[tokio::test(start_paused = true)]
async fn work_unfinished_when_the_grace_ends_is_left_unstored() {
    let mut l = looping(Duration::from_secs(30));
    l.started(&[0]).await;
    l.stop.take().unwrap().send(()).unwrap();
    let (result, calls) = l.ended().await;
    result.unwrap();
    assert!(!calls.iter().any(|c| matches!(c, Call::Store(..))), "{calls:?}");
    assert_eq!(calls.last(), Some(&Call::Commit));
}

#[tokio::test]
async fn a_report_that_fails_stops_the_loop_with_its_record_unstored() {
    let mut l = looping(Duration::from_secs(60));
    l.started(&[0]).await;
    l.reports.send(Err("not published".into())).await.unwrap();
    let (result, calls) = l.ended().await;
    assert_eq!(result.unwrap_err().to_string(), "not published");
    assert!(!calls.iter().any(|c| matches!(c, Call::Store(..))), "{calls:?}");
    assert_eq!(calls.last(), Some(&Call::Commit));
}
