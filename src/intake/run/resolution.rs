//! Resolution of an event's targets, in a task of its own: the pieces it hands back (a selector's
//! pages as they come, then the rest) and what the loop makes of them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{Report, State};
use crate::api::Refused;
use crate::event::{Request, Target};
use crate::intake::book::MsgKey;
use crate::intake::examples::{self, MadeFrom, Sources};
use crate::intake::journal::Recorder;
use crate::intake::resolve::{Pages, Resolved};
use crate::source::Source;

/// A piece of an event's resolution: a page of a selector's traces (`found` in their projects by
/// a query), or (`last`) the rest.
pub(super) struct Piece {
    key: MsgKey,
    resolved: Resolved,
    found: bool,
    last: bool,
    /// Answered once the loop has taken the page in and weighed its backpressure.
    taken: Option<oneshot::Sender<()>>,
}

/// Hands a selector's pages to the loop, each recorded in the journal first, and waits for room
/// for more ids before the next is fetched: the ids in flight exceed the bound by at most a page
/// per selector being resolved. While it waits it gives its workspace's resolution permit back: the
/// events waiting for one may be what holds the bound (the ids of an event not yet resolved count),
/// and they must resolve and finish for room to come.
struct ToLoop {
    key: MsgKey,
    tx: mpsc::Sender<Report>,
    room: watch::Receiver<bool>,
    permit: Option<OwnedSemaphorePermit>,
    sem: Arc<Semaphore>,
    recorder: Recorder,
    /// Per target, the trace ids other runs recorded and handed on already (not again).
    recalled: HashMap<usize, HashSet<Uuid>>,
    /// The workspace's examples made from runs (when it erases examples), and those of them made
    /// from the traces handed on.
    sources: Option<Result<Arc<Sources>, Refused>>,
    made_from: MadeFrom,
}

impl ToLoop {
    async fn hand_on(&mut self, traces: BTreeMap<Uuid, BTreeSet<Uuid>>) -> bool {
        self.note_made_from(&traces);
        let resolved = Resolved {
            sessions: traces,
            ..Resolved::default()
        };
        let (taken, taken_rx) = oneshot::channel();
        let piece = Piece {
            key: self.key,
            resolved,
            found: true,
            last: false,
            taken: Some(taken),
        };
        self.tx.send(Report::Resolved(piece)).await.is_ok() && taken_rx.await.is_ok()
    }

    /// Notes the examples made from `traces`, when the workspace erases examples.
    fn note_made_from(&mut self, traces: &BTreeMap<Uuid, BTreeSet<Uuid>>) {
        if let Some(sources) = &self.sources {
            self.made_from.add(sources, traces.values().flatten());
        }
    }
}

impl Pages for ToLoop {
    async fn recall(&mut self, target: usize) -> Option<bool> {
        if !self.recorder.is_current() {
            return Some(false);
        }
        let mut traces = self.recorder.recall().await.traces.remove(&target)?;
        let handed = self.recalled.entry(target).or_default();
        if !keep(&mut traces, |id| handed.insert(*id)) {
            return None;
        }
        Some(self.hand_on(traces).await)
    }

    async fn page(&mut self, target: usize, mut traces: BTreeMap<Uuid, BTreeSet<Uuid>>) -> bool {
        if let Some(recalled) = self.recalled.get(&target) {
            if !keep(&mut traces, |id| !recalled.contains(id)) {
                return true;
            }
        }
        self.recorder.traces(target, &traces).await;
        self.hand_on(traces).await
    }

    async fn room(&mut self) -> bool {
        if *self.room.borrow() {
            return true;
        }
        self.permit = None;
        if self.room.wait_for(|room| *room).await.is_err() {
            return false;
        }
        self.permit = self.sem.clone().acquire_owned().await.ok();
        self.permit.is_some()
    }
}

/// Keeps the trace ids `wanted` says to keep (projects left with none go); whether any is left.
fn keep(traces: &mut BTreeMap<Uuid, BTreeSet<Uuid>>, mut wanted: impl FnMut(&Uuid) -> bool) -> bool {
    traces.values_mut().for_each(|ids| ids.retain(&mut wanted));
    traces.retain(|_, ids| !ids.is_empty());
    !traces.is_empty()
}

impl Piece {
    /// A piece the loop need not answer, more to come.
    pub(super) fn first(key: MsgKey, resolved: Resolved) -> Piece {
        Piece {
            key,
            resolved,
            found: false,
            last: false,
            taken: None,
        }
    }

    /// The final piece (or the only one).
    pub(super) fn last(key: MsgKey, resolved: Resolved) -> Piece {
        Piece {
            key,
            resolved,
            found: false,
            last: true,
            taken: None,
        }
    }
}

impl State {
    /// Resolves `targets` in a task, within the workspace's share of resolutions in flight. What
    /// the journal holds below `floor` (the partition's stored offset) is not needed any more.
    pub(super) fn resolve(&self, key: MsgKey, request: Arc<Request>, targets: Vec<Target>, floor: Option<i64>) {
        let sem = self.resolving[&request.workspace].clone();
        let (intake, shared) = (self.intake.clone(), self.examples[&request.workspace].clone());
        let (tx, room) = (self.tx.reports.clone(), self.tx.room.subscribe());
        let recorder = Recorder::new(self.intake.journal.clone(), key, floor, request.request_id.clone());
        tokio::spawn(async move {
            let api = &intake.clients[&request.workspace];
            intake.resolver.look_up(api, &targets).await;
            // A request naming only examples has no trace to have made one from.
            let traces = targets.iter().any(|t| !matches!(t, Target::Examples { .. }));
            let sources = match api.erases_examples() && traces {
                true => Some(shared.sources().await),
                false => None,
            };
            let permit = sem.clone().acquire_owned().await.ok();
            // Its partition went elsewhere while it waited: the new owner replays it.
            if !recorder.is_current() {
                return;
            }
            let mut pages = ToLoop {
                key,
                tx: tx.clone(),
                room,
                permit,
                sem,
                recorder,
                recalled: HashMap::new(),
                sources,
                made_from: MadeFrom::default(),
            };
            let mut resolved = intake.resolver.resolve(api, &targets, &mut pages).await;
            if !resolved.nothing_found.is_empty() {
                tracing::info!(request_id = %request.request_id, partition = key.tp.1, offset = key.offset,
                    generation = key.generation, "a selector matched nothing");
            }
            if !pages.recorder.is_current() {
                return;
            }
            pages.note_made_from(&resolved.sessions);
            let reached = (&targets[..], std::mem::take(&mut pages.made_from));
            let erased = examples::erase(api, &shared, &request, reached, &mut pages.recorder).await;
            resolved.example_events = examples::events(&request, erased, intake.config.intake.max_batch, Utc::now());
            let _ = tx.send(Report::Resolved(Piece::last(key, resolved))).await;
        });
    }

    pub(super) fn on_resolved(&mut self, src: &mut Source, piece: Piece) {
        let Piece {
            key,
            resolved,
            found,
            last,
            taken,
        } = piece;
        let Some(request) = self.book.request(&key) else {
            // The event was abandoned (its partition went to another replica, which replays it).
            // Its examples are erased already, and the replay's search will not find them again:
            // their events go out anyway, as the only record of the erasure.
            for o in resolved.example_events {
                self.publish(key, o);
            }
            return;
        };
        let max_batch = self.intake.config.intake.max_batch;
        let r = self.book.resolved(key, resolved, last, max_batch, Utc::now());
        for o in r.now {
            self.publish(key, o);
        }
        if self.book.finished(key) {
            src.complete(key);
        }
        let now = std::time::Instant::now();
        for (pk, ids) in r.work {
            let key = (request.workspace.clone(), pk.session, found);
            for batch in self.coalescer.push_all(key, &ids, pk, now) {
                self.send_batch(batch);
            }
        }
        if self.stopping {
            self.flush_all();
        }
        if let Some(taken) = taken {
            self.backpressure(src);
            let _ = taken.send(());
        }
    }
}
