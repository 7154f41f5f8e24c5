//! Bookkeeping of work in flight: which input events wait on which parts, which parts wait on which
//! trace ids, and which output events each produces. Pure state, no I/O: the intake loop drives it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::resolve::{Resolved, Unresolved};
use super::FastMap;
use crate::api::Refusal;
use crate::event::{DeletionRequested, FailReason, Request};
use crate::output::Output;
use crate::window::Window;
use events::{failed, now_events};
use load::InFlight;

/// One input event: the source's ticket for its record.
pub type MsgKey = crate::source::Ticket;

/// How LangSmith answered a delete batch: the ids refused for good, with why (the others were
/// accepted at `at`), and the audit records found for accepted ids (trace id → record id).
#[derive(Debug, Default)]
pub struct Answered {
    pub ids: Vec<Uuid>,
    pub rejected: HashMap<Uuid, Refusal>,
    pub audit: HashMap<Uuid, Uuid>,
    pub at: DateTime<Utc>,
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
    /// Output events not yet acknowledged, parts not finished, plus one while resolution goes on.
    outstanding: usize,
    /// Trace ids the event names while it waits for resolution (they count toward the bound).
    unresolved_ids: usize,
    /// Still resolving: a selector's traces arrive a page at a time, so a project's part count is
    /// known only at the end, and parts finished before then wait in `held` (their ids only).
    resolving: bool,
    /// Per project: parts made so far, and the one still taking ids, if any.
    made: FastMap<Uuid, (u32, Option<u32>)>,
    held: Vec<(PartKey, Part)>,
}

struct Part {
    /// Ids given to the part; it takes no more once it has `max_batch` or resolution has ended.
    size: usize,
    sealed: bool,
    remaining: usize,
    accepted: Vec<Uuid>,
    rejected: Vec<Uuid>,
    accepted_at: Option<DateTime<Utc>>,
    /// Audit records of the delete calls that accepted its ids.
    audit: Vec<Uuid>,
    /// Why the rejected ids were refused (the last refusal: one project, one reason in practice).
    refusal: Option<Refusal>,
}

impl Part {
    fn open() -> Part {
        Part {
            size: 0,
            sealed: false,
            remaining: 0,
            accepted: Vec::new(),
            rejected: Vec::new(),
            accepted_at: None,
            audit: Vec::new(),
            refusal: None,
        }
    }
}

pub struct Book {
    msgs: FastMap<MsgKey, Msg>,
    parts: FastMap<PartKey, Part>,
    /// Ids in parts not yet answered, plus ids of events waiting for resolution.
    in_flight: InFlight,
    /// When a deletion accepted at a given time is checked, and the last time asked with its
    /// answer: the parts of a batch share theirs, so the window is worked out once per batch.
    window: Window,
    checked: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// What a piece of resolution gives: (part, ids) to coalesce, and events to publish now.
#[derive(Debug, Default)]
pub struct Resolution {
    pub work: Vec<(PartKey, Vec<Uuid>)>,
    pub now: Vec<Output>,
}

impl Book {
    pub fn new(window: Window) -> Book {
        Book {
            msgs: FastMap::default(),
            parts: FastMap::default(),
            in_flight: InFlight::default(),
            window,
            checked: None,
        }
    }

    /// A valid event, naming `unresolved_ids` trace ids before its targets are resolved: they
    /// count toward the in-flight bound from now on, not only once resolved.
    pub fn add(&mut self, key: MsgKey, request: Arc<Request>, unresolved_ids: usize) {
        self.in_flight.add(&request.workspace, unresolved_ids, 1);
        self.msgs.insert(
            key,
            Msg {
                unresolved_ids,
                request,
                outstanding: 1,
                resolving: true,
                made: FastMap::default(),
                held: Vec::new(),
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
        self.in_flight.ids
    }

    /// The load `workspace` puts on the bound: its ids in flight plus one per event of it held.
    pub fn load_of(&self, workspace: &str) -> usize {
        self.in_flight.load.get(workspace).copied().unwrap_or(0)
    }

    /// A piece of the resolution of `key` (`last` for the final one): returns the (part, ids) to
    /// coalesce and the events to publish now. Ids join the project's open part until it holds
    /// `max_batch`; the last piece closes every part, and the parts done by then are finished.
    pub fn resolved(
        &mut self,
        key: MsgKey,
        r: Resolved,
        last: bool,
        max_batch: usize,
        now: DateTime<Utc>,
    ) -> Resolution {
        let Some(msg) = self.msgs.get_mut(&key) else {
            return Resolution::default();
        };
        let req = msg.request.clone();
        let mut out = Resolution::default();
        for (session, ids) in r.sessions {
            let ids: Vec<Uuid> = ids.into_iter().collect();
            let mut rest = &ids[..];
            while !rest.is_empty() {
                let (made, open) = msg.made.entry(session).or_default();
                let pk = PartKey {
                    msg: key,
                    session,
                    part: *open.get_or_insert_with(|| {
                        *made += 1;
                        msg.outstanding += 1;
                        *made - 1
                    }),
                };
                let part = self.parts.entry(pk).or_insert_with(Part::open);
                let take = (max_batch - part.size).min(rest.len());
                part.size += take;
                part.remaining += take;
                if part.size >= max_batch {
                    part.sealed = true;
                    *open = None;
                }
                self.in_flight.add(&req.workspace, take, 0);
                out.work.push((pk, rest[..take].to_vec()));
                rest = &rest[take..];
            }
        }
        out.now = now_events(&req, r.failures, r.nothing_found, max_batch, now);
        out.now.extend(r.example_events);
        msg.outstanding += out.now.len();
        if last {
            out.now.extend(self.close(key));
        }
        out
    }

    /// The ids `key` named are all in its parts now (resolved in line while the event waits for the
    /// workspace's scan for examples before its resolution ends): they count there, no longer as
    /// unresolved too. Counted twice, they held half the in-flight bound under a backlog.
    pub fn named_in_parts(&mut self, key: MsgKey) {
        if let Some(msg) = self.msgs.get_mut(&key) {
            self.in_flight
                .sub(&msg.request.workspace, std::mem::take(&mut msg.unresolved_ids), 0);
        }
    }

    /// Resolution of `key` ended: its parts are closed and counted, and the ones done are finished.
    fn close(&mut self, key: MsgKey) -> Vec<Output> {
        let Some(msg) = self.msgs.get_mut(&key) else {
            return Vec::new();
        };
        msg.resolving = false;
        msg.outstanding -= 1;
        self.in_flight
            .sub(&msg.request.workspace, std::mem::take(&mut msg.unresolved_ids), 0);
        let mut done = std::mem::take(&mut msg.held);
        for (session, (_, open)) in msg.made.iter_mut() {
            let Some(part) = open.take() else { continue };
            let pk = PartKey {
                msg: key,
                session: *session,
                part,
            };
            let Some(p) = self.parts.get_mut(&pk) else { continue };
            p.sealed = true;
            if p.remaining == 0 {
                done.extend(self.parts.remove_entry(&pk));
            }
        }
        done.sort_by_key(|(pk, _)| (pk.session, pk.part));
        done.into_iter().flat_map(|(pk, part)| self.finish(pk, part)).collect()
    }

    /// A delete batch was answered. Returns the parts that completed, with the events they owe.
    pub fn batch_done(&mut self, owners: Vec<(u32, PartKey)>, answer: &Answered) -> Vec<(MsgKey, Vec<Output>)> {
        let mut done = Vec::new();
        // A part's ids sit next to each other in its batch: each run of them is looked up once.
        for run in owners.chunk_by(|a, b| a.1 == b.1) {
            let pk = run[0].1;
            let Some(part) = self.parts.get_mut(&pk) else { continue };
            for (i, _) in run {
                let id = &answer.ids[*i as usize];
                match answer.rejected.get(id) {
                    Some(why) => {
                        part.rejected.push(*id);
                        part.refusal = Some(why.clone());
                    }
                    None => {
                        part.accepted.push(*id);
                        part.accepted_at = Some(part.accepted_at.map_or(answer.at, |a| a.max(answer.at)));
                        part.audit.extend(answer.audit.get(id));
                    }
                }
            }
            part.remaining -= run.len();
            let workspace = self.msgs.get(&pk.msg).map_or("", |m| m.request.workspace.as_str());
            self.in_flight.sub(workspace, run.len(), 0);
            if part.remaining > 0 || !part.sealed {
                continue;
            }
            let Some(part) = self.parts.remove(&pk) else { continue };
            match self.msgs.get_mut(&pk.msg) {
                // The part count is not known yet: the part waits for the end of resolution.
                Some(msg) if msg.resolving => msg.held.push((pk, part)),
                _ => done.push((pk.msg, self.finish(pk, part))),
            }
        }
        done
    }

    fn finish(&mut self, pk: PartKey, mut part: Part) -> Vec<Output> {
        let verify_after = part.accepted_at.map(|at| self.verify_after(at));
        let Some(msg) = self.msgs.get_mut(&pk.msg) else {
            return Vec::new();
        };
        let req = &msg.request;
        let parts = msg.made.get(&pk.session).map_or(1, |(made, _)| *made);
        let mut out = Vec::new();
        if let (Some(at), Some(verify_after)) = (part.accepted_at.filter(|_| !part.accepted.is_empty()), verify_after) {
            // Two selectors of one request may match the same trace in one part.
            part.accepted.sort_unstable();
            part.accepted.dedup();
            part.audit.sort_unstable();
            part.audit.dedup();
            out.push(Output::Requested(DeletionRequested {
                request_id: req.request_id.clone(),
                workspace: req.workspace.clone(),
                session_id: pk.session,
                trace_ids: part.accepted,
                part: pk.part,
                parts,
                accepted_at: at,
                verify_after,
                deadline: req.deadline,
                attempt: 1,
                source: req.source.clone(),
                audit_log_ids: part.audit,
            }));
        }
        if !part.rejected.is_empty() {
            part.rejected.sort_unstable();
            part.rejected.dedup();
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
            out.push(Output::Failed(failed(req, f, (pk.part, parts), 1, Utc::now())));
        }
        msg.outstanding = msg.outstanding - 1 + out.len();
        out
    }

    fn verify_after(&mut self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self.checked {
            Some((asked, answer)) if asked == at => answer,
            _ => {
                let answer = self.window.verify_after(at);
                self.checked = Some((at, answer));
                answer
            }
        }
    }

    /// Forgets the events of `partition`, which moved to another replica that replays them: their
    /// parts, and what they held of the bound. Calls in flight go on; their answers find nothing
    /// to complete. Returns how many events were forgotten.
    pub fn drop_partition(&mut self, partition: crate::source::Tp) -> usize {
        let parts: Vec<PartKey> = (self.parts.keys())
            .filter(|pk| pk.msg.tp == partition)
            .copied()
            .collect();
        for pk in parts {
            let Some(part) = self.parts.remove(&pk) else { continue };
            let workspace = self.msgs.get(&pk.msg).map_or("", |m| m.request.workspace.as_str());
            self.in_flight.sub(workspace, part.remaining, 0);
        }
        let keys: Vec<MsgKey> = (self.msgs.keys()).filter(|k| k.tp == partition).copied().collect();
        for key in &keys {
            if let Some(msg) = self.msgs.remove(key) {
                self.in_flight.sub(&msg.request.workspace, msg.unresolved_ids, 1);
            }
        }
        keys.len()
    }

    /// An output event of `key` was acknowledged. Returns true when the input event is complete.
    pub fn published(&mut self, key: MsgKey) -> bool {
        self.settle(key, 1)
    }

    /// True (and forgotten) when nothing is owed for `key` any more.
    pub fn finished(&mut self, key: MsgKey) -> bool {
        self.settle(key, 0)
    }

    /// `acknowledged` outputs of `key` are in: true (and forgotten) when nothing is owed any more.
    fn settle(&mut self, key: MsgKey, acknowledged: usize) -> bool {
        let Entry::Occupied(mut entry) = self.msgs.entry(key) else {
            return false;
        };
        let msg = entry.get_mut();
        msg.outstanding = msg.outstanding.saturating_sub(acknowledged);
        if msg.outstanding > 0 {
            return false;
        }
        let msg = entry.remove();
        self.in_flight.sub(&msg.request.workspace, 0, 1);
        true
    }
}

mod events;
mod load;
#[cfg(test)]
mod tests;
