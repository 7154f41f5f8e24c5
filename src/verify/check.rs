//! One check of one part: ask LangSmith what is left, decide, delete again what is re-requested.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rdkafka::message::Message as _;

use super::decide::{decide, failed};
use super::Verifier;
use uuid::Uuid;

use crate::api::LangSmith;
use crate::event::{DeletionRequested, FailReason};
use crate::output::Output;
use crate::telemetry::{Failed, Occurrence};

/// When to check `part`: its `verify_after`, but no later than this worker's own window gives for
/// the time the record was written (its Kafka timestamp, never later than now). A `verify_after`
/// further ahead (a skewed clock, a foreign producer) is checked at that bound, not waited on for ever.
pub(super) fn due(
    window: &crate::window::Window,
    part: &DeletionRequested,
    m: &rdkafka::message::OwnedMessage,
) -> DateTime<Utc> {
    let now = Utc::now();
    let written = m
        .timestamp()
        .to_millis()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(now);
    part.verify_after.min(window.verify_after(written.min(now)))
}

/// The events a check owes, in the order to publish them. The question what is left is asked
/// together with the project's other parts that fell due (`batch.rs`).
pub async fn check(v: &Arc<Verifier>, part: &DeletionRequested) -> Vec<Output> {
    let cfg = &v.config.verifier;
    let api = &v.clients[&part.workspace];
    let lookback = TimeDelta::from_std(cfg.lookback).unwrap_or(TimeDelta::days(400));
    let since = part.accepted_at - lookback;
    let m = &v.metrics;
    let left = match super::batch::remaining(v, &part.workspace, part.session_id, &part.trace_ids, since).await {
        Ok(ids) => ids,
        Err(answer) => {
            let why = answer.refusal("the check");
            // A 403 is about the project: `forbidden`; any other refusal of a check: `check_rejected`.
            let reason = match why.reason {
                FailReason::Forbidden => FailReason::Forbidden,
                _ => FailReason::CheckRejected,
            };
            tracing::error!(request_id = %part.request_id, workspace = %part.workspace, session = %part.session_id,
                part = part.part, detail = %why.detail, "check refused");
            m.checks.with_label_values(&["failed"]).inc();
            Failed::part(part, reason).emit(Some(m));
            let f = failed(part, part.trace_ids.clone(), reason, why.detail, Utc::now());
            return vec![Output::Failed(f)];
        }
    };
    let now = Utc::now();
    let mut d = decide(part, &left, now, cfg, &v.config.window);
    if !d.re_request.is_empty() {
        let _permit = v.batches.permits(&part.workspace).acquire_owned().await;
        re_request(api, part, &mut d.outputs, &d.re_request, now).await;
    }
    let outcome = if left.is_empty() {
        "verified"
    } else if d.outputs.iter().any(|o| matches!(o, Output::Recheck(_))) {
        "partial"
    } else {
        "failed"
    };
    m.checks.with_label_values(&[outcome]).inc();
    for o in &d.outputs {
        match o {
            Output::Verified(_) => {
                let age = (now - part.accepted_at).num_milliseconds().max(0) as f64 / 1000.0;
                m.time_to_verified.observe(age);
            }
            Output::Failed(f) => {
                Failed::of(f).emit(Some(m));
            }
            _ => {}
        }
    }
    tracing::info!(request_id = %part.request_id, workspace = %part.workspace, session = %part.session_id,
        part = part.part, attempt = part.attempt, ids = part.trace_ids.len(), left = left.len(), outcome, "checked");
    d.outputs
}

/// Deletes again the ids still present. Those refused for good fail now instead of being
/// rechecked: they leave the recheck event and go into a `deletion-failed` one.
async fn re_request(
    api: &LangSmith,
    part: &DeletionRequested,
    outputs: &mut Vec<Output>,
    ids: &[Uuid],
    now: DateTime<Utc>,
) {
    let rejected = api.delete_all(part.session_id, ids).await;
    let Some(why) = rejected.values().next().cloned() else {
        return;
    };
    let mut refused: Vec<_> = rejected.keys().copied().collect();
    refused.sort_unstable();
    for o in outputs.iter_mut() {
        if let Output::Recheck(r) = o {
            r.trace_ids.retain(|id| !rejected.contains_key(id));
        }
    }
    outputs.retain(|o| !matches!(o, Output::Recheck(r) if r.trace_ids.is_empty()));
    outputs.push(Output::Failed(failed(part, refused, why.reason, why.detail, now)));
}
