//! The events the book publishes without a delete call: failures, and selectors that found nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{DeletionFailed, DeletionVerified, Request};
use crate::intake::resolve::Unresolved;
use crate::output::{parts_of, Output};

/// A selector that matched no trace in `session_id` (or in the workspace): verified at once.
fn nothing_found_event(req: &Request, session_id: Option<Uuid>, now: DateTime<Utc>) -> DeletionVerified {
    DeletionVerified {
        request_id: req.request_id.clone(),
        workspace: req.workspace.clone(),
        session_id,
        trace_ids: Vec::new(),
        part: 0,
        parts: 1,
        accepted_at: now,
        checked_at: now,
        attempts: 0,
        source: req.source.clone(),
    }
}

pub(super) fn failed(
    req: &Request,
    f: Unresolved,
    (part, parts): (u32, u32),
    attempts: u32,
    now: DateTime<Utc>,
) -> DeletionFailed {
    DeletionFailed {
        request_id: req.request_id.clone(),
        workspace: req.workspace.clone(),
        session_id: f.session_id,
        trace_ids: f.trace_ids,
        part,
        parts,
        reason: f.reason,
        detail: f.detail,
        failed_at: now,
        attempts,
        source: req.source.clone(),
    }
}

/// The events a piece of resolution publishes at once: failures, in parts of at most `max_batch`
/// ids like every other output (a request for an unknown project may name 100,000 ids, a record
/// larger than Kafka takes); and a verified event per selector that found nothing.
pub(super) fn now_events(
    req: &Request,
    failures: Vec<Unresolved>,
    nothing_found: Vec<Option<Uuid>>,
    max_batch: usize,
    now: DateTime<Utc>,
) -> Vec<Output> {
    let mut out = Vec::new();
    for f in failures {
        for (chunk, part) in parts_of(&f.trace_ids, max_batch) {
            let piece = Unresolved {
                session_id: f.session_id,
                trace_ids: chunk.to_vec(),
                reason: f.reason,
                detail: f.detail.clone(),
            };
            out.push(Output::Failed(failed(req, piece, part, 0, now)));
        }
    }
    for session_id in nothing_found {
        out.push(Output::Verified(nothing_found_event(req, session_id, now)));
    }
    out
}
