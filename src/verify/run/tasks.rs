//! The verifier's tasks: a check and its events, a part of an unknown workspace failed, an
//! unreadable record dead-lettered. Each reports back on the loop's `done` channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use rdkafka::message::OwnedMessage;

use super::{Held, State};
use crate::event::{DeletionRequested, FailReason, Rejection};
use crate::output::{DeadLetter, Output};
use crate::source::{Ticket, Tp};
use crate::telemetry::{DeadLettered, Failed, Occurrence};

impl State {
    pub(super) fn start(&mut self, t: Ticket, part: DeletionRequested) {
        *self.load.entry(part.workspace.clone()).or_default() += 1;
        let held = Held {
            accepted_at: part.accepted_at,
            deadline: part.deadline,
            workspace: part.workspace.clone(),
            ids: part.trace_ids.len(),
        };
        self.ids_in_flight += held.ids;
        self.in_flight.insert(t, Some(held));
        let cancelled = Arc::new(AtomicBool::new(false));
        self.cancels.insert(t, cancelled.clone());
        let (v, done, mut rebalancing) = (self.v.clone(), self.done.clone(), self.rebalancing.subscribe());
        tokio::spawn(async move {
            // The workspace's permits bound its LangSmith calls (`batch.rs`), not the wait for
            // Kafka's acknowledgement: held through publishing, they capped a verifier at 16 checks
            // per ack latency (~83/s here).
            let outputs = match cancelled.load(Ordering::Relaxed) {
                true => Vec::new(),
                false => super::super::check::check(&v, &part).await,
            };
            let mut sent = Ok(());
            // Waits out a rebalance under way (an error: the loop ended, so nothing to wait for).
            let _ = rebalancing.wait_for(|under_way| !under_way).await;
            // A partition gone to another replica is checked there: its events would be repeats.
            for o in outputs.into_iter().take_while(|_| !cancelled.load(Ordering::Relaxed)) {
                sent = crate::output::publish(&v.config, &v.publisher, o).await;
                if sent.is_err() {
                    break;
                }
            }
            let _ = done.send((t, sent)).await;
        });
    }

    /// A part of a workspace this verifier has no client for ends in `deletion-failed`
    /// (`unknown_workspace`) instead of the DLQ: every requested part must end in a terminal event.
    pub(super) fn unknown_workspace(&mut self, t: Ticket, part: DeletionRequested) {
        tracing::error!(request_id = %part.request_id, workspace = %part.workspace,
            "a part names a workspace this verifier does not configure: failed as unknown_workspace");
        Failed::part(&part, FailReason::UnknownWorkspace).emit(Some(&self.v.metrics));
        let detail = format!("workspace {:?} is not configured in this verifier", part.workspace);
        let f = super::super::decide::failed(
            &part,
            part.trace_ids.clone(),
            FailReason::UnknownWorkspace,
            detail,
            Utc::now(),
        );
        self.in_flight.insert(t, None);
        let (v, done) = (self.v.clone(), self.done.clone());
        tokio::spawn(async move {
            let sent = crate::output::publish(&v.config, &v.publisher, Output::Failed(f)).await;
            let _ = done.send((t, sent)).await;
        });
    }

    pub(super) fn dead_letter(&mut self, t: Ticket, m: &OwnedMessage, why: Rejection) {
        DeadLettered::of(m, &why).emit(Some(&self.v.metrics));
        let letter = DeadLetter::new(m, why);
        self.in_flight.insert(t, None);
        let (v, done) = (self.v.clone(), self.done.clone());
        tokio::spawn(async move {
            let sent = letter.send(&v.publisher, &v.config.topics.dlq).await;
            let _ = done.send((t, sent)).await;
        });
    }

    /// `tp` went to another replica, which checks again what was not stored: the checks in flight
    /// here publish nothing.
    pub(super) fn cancel(&mut self, tp: Tp) {
        let mut checks = 0;
        for (key, cancelled) in &self.cancels {
            if key.tp == tp {
                cancelled.store(true, Ordering::Relaxed);
                checks += 1;
            }
        }
        if checks > 0 {
            tracing::info!(
                partition = tp.1,
                checks,
                "partition went to another replica: its checks in flight publish nothing"
            );
        }
    }
}
