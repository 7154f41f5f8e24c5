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
    let result = loop {
        if grace.is_some() && work.in_flight() == 0 {
            break Ok(());
        }
        let deadline = work.deadline();
        tokio::select! {
            biased;
            _ = &mut shutdown, if grace.is_none() => {
                tracing::info!(role = W::ROLE, in_flight = work.in_flight(), "shutting down: finishing work in flight");
                grace = Some(Instant::now() + grace_period);
                work.shutdown(&mut src);
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
            _ = crate::until::sleep_until(deadline) => work.timer(&mut src),
            m = consumer.recv(), if grace.is_none() => match m {
                Ok(m) => {
                    // A record comes after the rebalances reported before it.
                    while let Ok(a) = assignments.try_recv() {
                        src.rebalance(&mut work, a);
                    }
                    if let Err(e) = src.receive(&mut work, &m) {
                        break Err(e);
                    }
                }
                Err(e) => tracing::warn!(role = W::ROLE, error = %e, "consumer error"),
            },
        }
        work.turn(&mut src);
    };
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
