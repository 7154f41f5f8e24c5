//! Bookkeeping of work in flight: which input events wait on which parts, which parts wait on which
//! trace ids, and which output events each produces. Pure state, no I/O: the intake loop drives it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::resolve::{Resolved, Unresolved};
use crate::api::Refusal;
use crate::event::{DeletionFailed, DeletionRequested, DeletionVerified, FailReason, Request};
use crate::output::Output;
use crate::window::Window;

/// One input event; `generation` tells apart a replay after the partition was re-assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgKey {
    pub partition: i32,
    pub offset: i64,
    pub generation: u64,
}

/// One part: at most `max_batch` trace ids of one request in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub msg: MsgKey,
    pub session: Uuid,
    pub part: u32,
}

struct Msg {
    request: Arc<Request>,
    /// Output events not yet acknowledged, plus one while resolution or a part is pending.
    outstanding: usize,
    /// Trace ids the event names while it waits for resolution (they count toward the bound).
    unresolved_ids: usize,
}

struct Part {
    parts: u32,
    remaining: usize,
    accepted: Vec<Uuid>,
    rejected: Vec<Uuid>,
    accepted_at: Option<DateTime<Utc>>,
    /// Why the rejected ids were refused (the last refusal: one project, one reason in practice).
    refusal: Option<Refusal>,
}

#[derive(Default)]
pub struct Book {
    msgs: HashMap<MsgKey, Msg>,
    parts: HashMap<PartKey, Part>,
    /// Ids in parts not yet answered, plus ids of events waiting for resolution.
    ids_in_flight: usize,
}

impl Book {
    /// A valid event, naming `unresolved_ids` trace ids before its targets are resolved: they
    /// count toward the in-flight bound from now on, not only once resolved.
    pub fn add(&mut self, key: MsgKey, request: Arc<Request>, unresolved_ids: usize) {
        self.ids_in_flight += unresolved_ids;
        self.msgs.insert(
            key,
            Msg {
                unresolved_ids,
                request,
                outstanding: 1,
            },
        );
    }

    pub fn request(&self, key: &MsgKey) -> Option<Arc<Request>> {
        self.msgs.get(key).map(|m| m.request.clone())
    }

    pub fn contains(&self, key: &MsgKey) -> bool {
        self.msgs.contains_key(key)
    }

    pub fn messages(&self) -> usize {
        self.msgs.len()
    }

    pub fn ids_in_flight(&self) -> usize {
        self.ids_in_flight
    }

    /// Resolution finished: returns the (part, ids) to coalesce and the events to publish now.
    pub fn resolved(
        &mut self,
        key: MsgKey,
        r: Resolved,
        max_batch: usize,
        now: DateTime<Utc>,
    ) -> (Vec<(PartKey, Vec<Uuid>)>, Vec<Output>) {
        let Some(msg) = self.msgs.get_mut(&key) else {
            return (Vec::new(), Vec::new());
        };
        self.ids_in_flight -= std::mem::take(&mut msg.unresolved_ids);
        let req = msg.request.clone();
        let mut work = Vec::new();
        for (session, ids) in r.sessions {
            let ids: Vec<Uuid> = ids.into_iter().collect();
            let parts = ids.len().div_ceil(max_batch) as u32;
            for (i, chunk) in ids.chunks(max_batch).enumerate() {
                let pk = PartKey {
                    msg: key,
                    session,
                    part: i as u32,
                };
                let part = Part {
                    parts,
                    remaining: chunk.len(),
                    accepted: Vec::new(),
                    rejected: Vec::new(),
                    accepted_at: None,
                    refusal: None,
                };
                self.parts.insert(pk, part);
                self.ids_in_flight += chunk.len();
                work.push((pk, chunk.to_vec()));
            }
        }
        let mut now_out = Vec::new();
        // In parts of at most `max_batch` ids, like every other output: a request for an unknown
        // project may name 100,000 ids, a record larger than Kafka takes.
        for f in r.failures {
            let parts = f.trace_ids.len().div_ceil(max_batch).max(1) as u32;
            for (i, chunk) in f.trace_ids.chunks(max_batch).enumerate() {
                let part = Unresolved {
                    trace_ids: chunk.to_vec(),
                    detail: f.detail.clone(),
                    ..f
                };
                now_out.push(Output::Failed(failed(&req, part, (i as u32, parts), 0, now)));
            }
            if f.trace_ids.is_empty() {
                now_out.push(Output::Failed(failed(&req, f, (0, 1), 0, now)));
            }
        }
        for session_id in r.nothing_found {
            now_out.push(Output::Verified(DeletionVerified {
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
            }));
        }
        // The pending-resolution unit becomes one unit per part plus one per event to publish now.
        msg.outstanding = msg.outstanding - 1 + work.len() + now_out.len();
        (work, now_out)
    }

    /// A delete call ended: `accepted` ids went through at `at`, `rejected` were refused for good.
    /// Returns the parts that completed, with the events they owe.
    pub fn batch_done(
        &mut self,
        owners: Vec<(u32, PartKey)>,
        ids: &[Uuid],
        rejected: &HashMap<Uuid, Refusal>,
        at: DateTime<Utc>,
        window: &Window,
    ) -> Vec<(MsgKey, Vec<Output>)> {
        let mut done = Vec::new();
        for (i, pk) in owners {
            let id = &ids[i as usize];
            let Some(part) = self.parts.get_mut(&pk) else { continue };
            match rejected.get(id) {
                Some(why) => {
                    part.rejected.push(*id);
                    part.refusal = Some(why.clone());
                }
                None => {
                    part.accepted.push(*id);
                    part.accepted_at = Some(part.accepted_at.map_or(at, |a| a.max(at)));
                }
            }
            part.remaining -= 1;
            self.ids_in_flight -= 1;
            if part.remaining == 0 {
                if let Some(part) = self.parts.remove(&pk) {
                    done.push((pk.msg, self.finish(pk, part, window)));
                }
            }
        }
        done
    }

    fn finish(&mut self, pk: PartKey, mut part: Part, window: &Window) -> Vec<Output> {
        let Some(msg) = self.msgs.get_mut(&pk.msg) else {
            return Vec::new();
        };
        let req = &msg.request;
        let mut out = Vec::new();
        if let Some(at) = part.accepted_at.filter(|_| !part.accepted.is_empty()) {
            part.accepted.sort_unstable();
            out.push(Output::Requested(DeletionRequested {
                request_id: req.request_id.clone(),
                workspace: req.workspace.clone(),
                session_id: pk.session,
                trace_ids: part.accepted,
                part: pk.part,
                parts: part.parts,
                accepted_at: at,
                verify_after: window.verify_after(at),
                deadline: req.deadline,
                attempt: 1,
                source: req.source.clone(),
            }));
        }
        if !part.rejected.is_empty() {
            part.rejected.sort_unstable();
            let why = part.refusal.take().unwrap_or_else(|| Refusal {
                reason: FailReason::RejectedByApi,
                detail: String::new(),
            });
            let f = Unresolved {
                session_id: Some(pk.session),
                trace_ids: part.rejected,
                reason: why.reason,
                detail: why.detail,
            };
            out.push(Output::Failed(failed(req, f, (pk.part, part.parts), 1, Utc::now())));
        }
        msg.outstanding = msg.outstanding - 1 + out.len();
        out
    }

    /// An output event of `key` was acknowledged. Returns true when the input event is complete.
    pub fn published(&mut self, key: MsgKey) -> bool {
        let Some(msg) = self.msgs.get_mut(&key) else {
            return false;
        };
        msg.outstanding = msg.outstanding.saturating_sub(1);
        self.finished(key)
    }

    /// True (and forgotten) when nothing is owed for `key` any more.
    pub fn finished(&mut self, key: MsgKey) -> bool {
        if self.msgs.get(&key).is_some_and(|m| m.outstanding == 0) {
            self.msgs.remove(&key);
            return true;
        }
        false
    }
}

fn failed(
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

#[cfg(test)]
mod tests;
