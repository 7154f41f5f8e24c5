//! Queueing the outputs in librdkafka and waiting for Kafka's acknowledgements of them and of the
//! dead letters, off the loop: one task encodes and queues each output the loop hands it, waits for
//! them all, and reports them back in batches, as many as are in when it reports. A task per record
//! cost a spawn, a wake from librdkafka's thread and a turn of the loop for each of them (a million
//! under a backlog), and the encoding was a tenth of the loop.

use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::sync::mpsc;

use super::{Ack, Report};
use crate::intake::book::MsgKey;
use crate::output::Output;

/// A record queued in librdkafka, until Kafka acknowledges it (or it fails for good).
pub(super) type Pending = Pin<Box<dyn Future<Output = Ack> + Send>>;

/// Encodes an output and queues it in librdkafka; what is left waits for the acknowledgement. Called
/// as the task takes the output, so that only librdkafka's copy and a small future remain while it
/// waits (thousands wait under a backlog).
pub(super) type Queue = Box<dyn Fn(MsgKey, Output) -> Pending + Send>;

/// What the loop hands the task. Nearly every job is an output: boxing it would cost an allocation
/// each for nothing.
#[allow(clippy::large_enum_variant)]
enum Job {
    Output(MsgKey, Output),
    Pending(Pending),
}

/// The most acknowledgements in one report: the loop takes them in one turn.
const BATCH: usize = 1024;

pub(super) struct Acks(mpsc::UnboundedSender<Job>);

impl Acks {
    /// Starts the task that queues outputs with `queue` and reports on `reports`. It ends once the
    /// loop is gone and every record it waits for is settled.
    pub(super) fn spawn(reports: mpsc::Sender<Report>, queue: Queue) -> Acks {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(wait(rx, queue, reports));
        Acks(tx)
    }

    /// Publishes `output`: its acknowledgement is then reported.
    pub(super) fn publish(&self, key: MsgKey, output: Output) {
        self.send(Job::Output(key, output));
    }

    /// Waits for `pending`, whose acknowledgement is then reported.
    pub(super) fn wait(&self, pending: Pending) {
        self.send(Job::Pending(pending));
    }

    fn send(&self, job: Job) {
        // The task ends only after this sender is dropped, or if it panicked: then the event
        // could never complete, and the loop stops loudly rather than waiting for ever.
        if self.0.send(job).is_err() {
            panic!("the task waiting for Kafka's acknowledgements is gone");
        }
    }
}

async fn wait(mut rx: mpsc::UnboundedReceiver<Job>, queue: Queue, reports: mpsc::Sender<Report>) {
    let mut waiting = FuturesUnordered::new();
    let mut open = true;
    while open || !waiting.is_empty() {
        tokio::select! {
            job = rx.recv(), if open => match job {
                Some(job) => {
                    let take = |job| match job {
                        Job::Output(key, output) => queue(key, output),
                        Job::Pending(p) => p,
                    };
                    waiting.push(take(job));
                    while let Ok(job) = rx.try_recv() {
                        waiting.push(take(job));
                    }
                }
                None => open = false,
            },
            Some(first) = waiting.next() => {
                let mut acks = vec![first];
                while acks.len() < BATCH {
                    match waiting.next().now_or_never() {
                        Some(Some(ack)) => acks.push(ack),
                        _ => break,
                    }
                }
                // The loop is gone: nothing waits for the rest.
                if reports.send(Report::Acks(acks)).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::book::MsgKey;

    fn key(offset: i64) -> MsgKey {
        MsgKey {
            tp: (0, 0),
            offset,
            generation: 1,
        }
    }

    #[tokio::test]
    async fn acknowledgements_are_reported_each_once_together_and_the_task_ends_after_the_last() {
        let (tx, mut reports) = mpsc::channel(4);
        let acks = Acks::spawn(tx, Box::new(|_, _| unreachable!("only records queued already")));
        let (open, gate) = tokio::sync::watch::channel(false);
        for offset in 0..100 {
            let mut gate = gate.clone();
            acks.wait(Box::pin(async move {
                let _ = gate.wait_for(|open| *open).await;
                Ack::Output(key(offset), Ok(()))
            }));
        }
        open.send(true).unwrap();
        drop(acks);
        let (mut offsets, mut batches) = (Vec::new(), 0);
        // The channel closes once the task has reported every record and ended.
        while let Some(report) = reports.recv().await {
            let Report::Acks(acks) = report else {
                panic!("only acknowledgements are reported")
            };
            batches += 1;
            for ack in acks {
                let Ack::Output(key, sent) = ack else {
                    panic!("only outputs were queued")
                };
                assert!(sent.is_ok());
                offsets.push(key.offset);
            }
        }
        offsets.sort_unstable();
        assert_eq!(offsets, (0..100).collect::<Vec<_>>());
        assert_eq!(
            batches, 1,
            "the acknowledgements in when the task reports go in one report"
        );
    }
}
