//! Events resolved in line (explicit ids in cached projects) of a workspace that erases examples:
//! they wait together for a scan of the workspace's examples made from runs that began after they
//! arrived (one ask of the workspace's shared rounds per batch, not one per event). Those made into
//! no example are finished in line; the others erase theirs in a task.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::resolution::Piece;
use super::{Report, State};
use crate::api::Refused;
use crate::event::Request;
use crate::intake::book::MsgKey;
use crate::intake::examples::{self, MadeFrom, Sources};
use crate::intake::journal::Recorder;
use crate::intake::resolve::Resolved;
use crate::source::Source;

/// An event waiting for the scan: its request, its trace ids, and its partition's stored offset.
pub(super) struct Waiter {
    key: MsgKey,
    request: Arc<Request>,
    traces: Vec<Uuid>,
    floor: Option<i64>,
}

/// A workspace's events waiting for a scan: those it asked one for, and those that came since.
#[derive(Default)]
pub(super) struct Waiting {
    asking: bool,
    next: Vec<Waiter>,
}

/// A scan's answer, for the events that asked for it.
pub(super) struct Scanned {
    workspace: String,
    sources: Result<Arc<Sources>, Refused>,
    waiters: Vec<Waiter>,
}

impl State {
    /// Has the event `key` (its traces resolved in line) wait for the next scan of its workspace.
    pub(super) fn wait_for_scan(&mut self, key: MsgKey, request: Arc<Request>, traces: Vec<Uuid>, floor: Option<i64>) {
        let workspace = request.workspace.clone();
        let waiting = self.waiting.entry(workspace.clone()).or_default();
        waiting.next.push(Waiter {
            key,
            request,
            traces,
            floor,
        });
        if !waiting.asking {
            self.ask_scan(workspace);
        }
    }

    fn ask_scan(&mut self, workspace: String) {
        let waiting = self.waiting.entry(workspace.clone()).or_default();
        waiting.asking = true;
        let waiters = std::mem::take(&mut waiting.next);
        let (shared, tx) = (self.examples[&workspace].clone(), self.tx.reports.clone());
        tokio::spawn(async move {
            let sources = shared.sources().await;
            let scanned = Scanned {
                workspace,
                sources,
                waiters,
            };
            let _ = tx.send(Report::Scanned(scanned)).await;
        });
    }

    /// Finishes the events a scan answered that reach no example; the others erase theirs.
    pub(super) fn on_scanned(&mut self, src: &mut Source, scanned: Scanned) {
        for w in scanned.waiters {
            let mut made_from = MadeFrom::default();
            made_from.add(&scanned.sources, &w.traces);
            if made_from.examples.is_empty() && made_from.refused.is_none() {
                self.on_resolved(src, Piece::last(w.key, Resolved::default()));
            } else {
                self.erase_made_from(w, made_from);
            }
        }
        let waiting = self.waiting.entry(scanned.workspace.clone()).or_default();
        waiting.asking = false;
        if !waiting.next.is_empty() {
            self.ask_scan(scanned.workspace);
        }
    }

    /// Erases, in a task, the examples made from the traces of `w`, and hands its last piece on
    /// with their events.
    fn erase_made_from(&self, w: Waiter, made_from: MadeFrom) {
        // Its partition went elsewhere while it waited (the book dropped it): the new owner
        // replays it. Otherwise the partition is this replica's since the event arrived, and the
        // run, made here, joins the journal cache of that ownership.
        if self.book.request(&w.key).is_none() {
            return;
        }
        let mut recorder = Recorder::new(
            self.intake.journal.clone(),
            w.key,
            w.floor,
            w.request.request_id.clone(),
        );
        let (intake, shared) = (self.intake.clone(), self.examples[&w.request.workspace].clone());
        let tx = self.tx.reports.clone();
        tokio::spawn(async move {
            let api = &intake.clients[&w.request.workspace];
            let erased = examples::erase(api, &shared, &w.request, (&[], made_from), &mut recorder).await;
            let resolved = Resolved {
                example_events: examples::events(&w.request, erased, intake.config.intake.max_batch, Utc::now()),
                ..Resolved::default()
            };
            let _ = tx.send(Report::Resolved(Piece::last(w.key, resolved))).await;
        });
    }
}
