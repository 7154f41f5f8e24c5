//! The events the book publishes without a delete call: failures, and selectors that found nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{DeletionFailed, DeletionVerified, Request};
use crate::intake::resolve::Unresolved;

/// A selector that matched no trace in `session_id` (or in the workspace): verified at once.
pub(super) fn nothing_found(req: &Request, session_id: Option<Uuid>, now: DateTime<Utc>) -> DeletionVerified {
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
