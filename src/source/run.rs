//! The loop both roles run: one task owns the consumer, the source and the role's state. Rebalances,
//! the role's task reports, its timer and the consumer's records are taken in turn, so nothing
//! is shared and the loop never waits on the network.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Receive, Source, Work};
use crate::kafka::Assignment;

/// The parts of a role's loop.
pub struct Parts<C, W: Work> {
    pub consumer: Arc<C>,
    pub topics: Vec<String>,
    pub work: W,
    pub assignments: mpsc::UnboundedReceiver<Assignment>,
    pub reports: mpsc::Receiver<W::Report>,
    /// How long work in flight may take to finish once `shutdown` resolves.
    pub grace: Duration,
}

/// Runs until `shutdown` resolves, then finishes the work in flight within the grace period,
/// commits what is stored and drops the consumer (off the runtime: librdkafka's close blocks).
pub async fn run<C: Receive, W: Work>(parts: Parts<C, W>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let Parts {
        consumer,
        topics,
        mut work,
        mut assignments,
        mut reports,
        grace: grace_period,
    } = parts;
    let mut src = Source::new(consumer.clone(), topics);
    tokio::pin!(shutdown);
    let mut grace: Option<Instant> = None;
    let mut progress = tokio::time::interval(super::progress::INTERVAL);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut timer = Timer::new();
    let result = loop {
        if grace.is_some() && work.in_flight() == 0 {
            break Ok(());
        }
        timer.arm(work.deadline());
        tokio::select! {
            biased;
            _ = &mut shutdown, if grace.is_none() => {
                tracing::info!(role = W::ROLE, in_flight = work.in_flight(), "shutting down: finishing work in flight");
                grace = Some(Instant::now() + grace_period);
                work.shutdown(&mut src);
                src.close_input();
            }
            _ = crate::until::sleep_until(grace) => {
                tracing::warn!(role = W::ROLE, in_flight = work.in_flight(),
                    "shutdown grace elapsed: unfinished work will be replayed");
                break Ok(());
            }
            Some(a) = assignments.recv() => src.rebalance(&mut work, a),
            // Before the reports: a burst of them must not hold back what a replica that dies
            // would otherwise leave to be redone.
            _ = progress.tick() => src.commit_progress(),
            Some(r) = reports.recv() => if let Err(e) = work.report(&mut src, r) {
                break Err(e);
            },
            () = timer.fired() => work.timer(&mut src),
            // Polled in the grace period too, so that rebalances are served: one left pending
            // hangs the consumer's close (seen in the scaleout smoke run: `rd_kafka_assign` inside
            // the close, waiting for ever). Records that still come then are not started.
            // Polled while the role is full too (its records wait, `waiting.rs`), unless too many
            // wait already (`Source::reading`).
            m = consumer.recv(), if src.reading() => {
                if grace.is_some() {
                    continue;
                }
                if let Err(e) = record(&mut src, &mut work, &mut assignments, m) {
                    break Err(e);
                }
            }
            // After the consumer, so that it is polled on every turn it may be: records it has
            // wait behind these, and past `waiting::MAX_BYTES` only these are taken.
            () = std::future::ready(()), if grace.is_none() && src.has_waiting() => {
                if let Err(e) = src.receive_waiting(&mut work) {
                    break Err(e);
                }
            }
        }
        work.turn(&mut src);
        src.store_moved();
    };
    src.store_moved();
    if let Err(e) = consumer.commit() {
        tracing::debug!(role = W::ROLE, error = %e, "final commit (nothing stored since the last one?)");
    }
    // Offsets done since the last store, past an unfinished one (librdkafka's close waits for it).
    src.commit_progress();
    work.closed();
    drop(src);
    tokio::task::spawn_blocking(move || drop(consumer)).await.ok();
    result
}

/// A record from the consumer, or its error (logged).
fn record<W: Work>(
    src: &mut Source,
    work: &mut W,
    assignments: &mut mpsc::UnboundedReceiver<Assignment>,
    m: anyhow::Result<rdkafka::message::OwnedMessage>,
) -> anyhow::Result<()> {
    match m {
        Ok(m) => {
            // A record comes after the rebalances reported before it.
            while let Ok(a) = assignments.try_recv() {
                src.rebalance(work, a);
            }
            src.take(work, m)
        }
        Err(e) => {
            tracing::warn!(role = W::ROLE, error = %e, "consumer error");
            Ok(())
        }
    }
}

/// The role's timer, reset only when its deadline moves: a timer made afresh each turn cost more
/// than most turns.
struct Timer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        }
    }

    fn arm(&mut self, deadline: Option<Instant>) {
        if deadline != self.armed {
            if let Some(at) = deadline {
                self.sleep.as_mut().reset(at);
            }
            self.armed = deadline;
        }
    }

    /// Resolves at the deadline armed (never without one), and disarms.
    async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.armed = None;
    }
}
