//! The intake loop: one task owns the consumer and all bookkeeping; resolution, delete calls and
//! publishing run as tasks that report back on channels. Offsets are stored only when an event's
//! every id is accepted and its every output event acknowledged, over the contiguous prefix.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use rdkafka::message::OwnedMessage;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

mod acks;
mod audit;
mod delete;
mod made_from;
mod outputs;
mod pressure;
mod resolution;

use acks::Acks;
use delete::delete;
use resolution::Piece;

use super::book::{Answered, Book, MsgKey, PartKey};
use super::coalesce::{Batch, Coalescer};
use super::examples::Shared;
use super::invalid::InvalidShare;
use super::Intake;
use crate::event::{self, Incoming, Target};
use crate::publish::PublishError;
use crate::source::{Source, Subscription, Ticket, Tp, Work};

/// A batch's workspace and project, and whether its ids were found in that project by a query
/// (a selector's): those need no look for the project they are in before their delete.
type BatchKey = (String, Uuid, bool);

/// What a finished delete batch reports.
struct BatchDone {
    owners: Vec<(u32, PartKey)>,
    answer: Answered,
}

/// An output event or a dead letter was published, or could not be (the worker then stops: the
/// input event stays unstored and is replayed).
enum Ack {
    Output(MsgKey, Result<(), PublishError>),
    Dlq(MsgKey, Result<(), PublishError>),
}

/// What the intake's tasks report back to the loop.
enum Report {
    Resolved(Piece),
    Scanned(made_from::Scanned),
    Batch(BatchDone),
    Acks(Vec<Ack>),
}

struct Channels {
    reports: mpsc::Sender<Report>,
    /// True while the in-flight ids are below the bound (the input is not paused).
    room: watch::Sender<bool>,
    /// False while Kafka acknowledges no output (`pressure.rs`): delete calls wait for it.
    publishing: watch::Sender<bool>,
}

struct State {
    intake: Arc<Intake>,
    book: Book,
    coalescer: Coalescer<BatchKey, PartKey>,
    /// Per workspace, so a workspace whose calls never return (a refused key, an outage) holds only
    /// its own work: delete calls in flight, and resolutions in flight.
    calls: HashMap<String, Arc<Semaphore>>,
    resolving: HashMap<String, Arc<Semaphore>>,
    /// Per workspace, the example calls its requests share.
    examples: HashMap<String, Shared>,
    /// Per workspace, the events resolved in line waiting for a scan of its examples.
    waiting: HashMap<String, made_from::Waiting>,
    tx: Channels,
    /// Waits for the acknowledgements of the outputs and dead letters queued.
    acks: Acks,
    /// The share of the in-flight bound each workspace may hold before its events are set aside.
    share: Option<usize>,
    dlq_pending: usize,
    invalid: InvalidShare,
    /// Delete batches sent and not answered; outputs queued and not acknowledged.
    calls_in_flight: usize,
    outputs_in_flight: usize,
    /// When Kafka last acknowledged an output or a dead letter (or one was queued with none
    /// waiting).
    acked_at: std::time::Instant,
    /// Shutting down: every resolution is sent at once, no batch lingers.
    stopping: bool,
    /// A rebalance is under way: partitions revoked, not yet assigned again.
    rebalancing: bool,
    /// The outputs of work that finished during a rebalance, or while Kafka acknowledges nothing.
    /// Queued in librdkafka, they could not be taken back: delivered after their partition went
    /// elsewhere (the group moves partitions after a long outage), they would be repeated by the
    /// new owner, which replays what was not committed. Held here, those of partitions that went
    /// elsewhere are dropped, and the others published once it is known which they are.
    held: Vec<(MsgKey, crate::output::Output)>,
}

/// Resolutions (project lookups, selector queries) in flight per workspace.
const RESOLUTIONS_PER_WORKSPACE: usize = 64;

pub async fn run(intake: Arc<Intake>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let cfg = &intake.config;
    let sub = Subscription {
        group: &cfg.kafka.intake_group,
        topics: vec![cfg.topics.requests.clone()],
        // A bounded prefetch queue keeps memory down under a backlog. Once it is full, librdkafka
        // waits `fetch.queue.backoff.ms` (1 s by default) before it fetches again, which its
        // documentation says to lower with a queue this small.
        defaults: &[
            ("queued.max.messages.kbytes", "16384"),
            ("fetch.queue.backoff.ms", "10"),
        ],
        lag: None,
        role: crate::share::Role::Intake,
        clients: intake.clients.clone(),
    };
    let per_workspace = |permits: usize| -> HashMap<String, Arc<Semaphore>> {
        let each = |w: &String| (w.clone(), Arc::new(Semaphore::new(permits)));
        cfg.workspaces.keys().map(each).collect()
    };
    let work = |reports: mpsc::Sender<Report>| State {
        coalescer: Coalescer::new(cfg.intake.max_batch, cfg.intake.linger),
        intake: intake.clone(),
        book: Book::new(cfg.window.clone()),
        calls: per_workspace(cfg.intake.max_concurrent_calls),
        resolving: per_workspace(RESOLUTIONS_PER_WORKSPACE),
        examples: (cfg.workspaces.keys())
            .map(|w| (w.clone(), Shared::spawn(intake.clients.clone(), w.clone())))
            .collect(),
        waiting: HashMap::new(),
        acks: Acks::spawn(reports.clone(), {
            let intake = intake.clone();
            Box::new(move |key, output| outputs::queue(&intake, key, output))
        }),
        tx: Channels {
            reports,
            room: watch::Sender::new(true),
            publishing: watch::Sender::new(true),
        },
        share: crate::source::share(cfg.intake.max_in_flight_ids, cfg.workspaces.len()),
        dlq_pending: 0,
        invalid: InvalidShare::default(),
        calls_in_flight: 0,
        outputs_in_flight: 0,
        acked_at: std::time::Instant::now(),
        stopping: false,
        rebalancing: false,
        held: Vec::new(),
    };
    crate::source::consume(cfg, intake.metrics.clone(), sub, work, shutdown).await
}

impl Work for State {
    type Report = Report;
    const ROLE: &'static str = "intake";

    fn record(&mut self, src: &mut Source, t: Ticket, m: &OwnedMessage) -> anyhow::Result<()> {
        self.on_message(src, t, m)
    }

    fn report(&mut self, src: &mut Source, r: Report) -> anyhow::Result<()> {
        match r {
            Report::Resolved(piece) => self.on_resolved(src, piece),
            Report::Scanned(scanned) => self.on_scanned(src, scanned),
            Report::Batch(done) => self.on_batch(src, done),
            Report::Acks(acks) => return self.on_acks(src, acks),
        }
        Ok(())
    }

    fn holds(&self, t: &Ticket) -> bool {
        self.book.contains(t)
    }

    /// The intake holds no record unstarted: what it sets aside, the source gives back.
    fn release(&mut self, _: Tp) -> Vec<i64> {
        Vec::new()
    }

    /// The unfinished events of `tp` here would only repeat the events of the replica that got it:
    /// they are forgotten (calls in flight go on).
    fn abandon(&mut self, tp: Tp) {
        self.intake.journal.forget(tp.1);
        let events = self.book.drop_partition(tp);
        if events > 0 {
            tracing::info!(
                partition = tp.1,
                events,
                "partition went to another replica: its unfinished events are left to it"
            );
        }
    }

    fn revoked(&mut self, _: &mut Source) {
        self.rebalancing = true;
    }

    fn assigned(&mut self, _: &mut Source) {
        self.rebalancing = false;
        self.publish_held();
    }

    fn deadline(&self) -> Option<Instant> {
        self.coalescer.next_deadline().map(Instant::from_std)
    }

    fn timer(&mut self, _: &mut Source) {
        for batch in self.coalescer.expired(std::time::Instant::now()) {
            self.send_batch(batch);
        }
    }

    fn turn(&mut self, src: &mut Source) {
        self.backpressure(src);
    }

    fn in_flight(&self) -> usize {
        self.book.messages() + self.dlq_pending
    }

    fn shutdown(&mut self, _: &mut Source) {
        self.stopping = true;
        // Events held go out: this replica will not learn the end of a rebalance or an outage.
        self.publish_held();
        self.flush_all();
    }

    fn closed(&mut self) {
        self.intake.publisher.flush(std::time::Duration::from_secs(5));
    }
}

impl State {
    /// A new event: parsed, set aside past its workspace's share, or resolved and added to the book.
    fn on_message(&mut self, src: &mut Source, key: MsgKey, m: &OwnedMessage) -> anyhow::Result<()> {
        let rec = Incoming::from_message(m);
        match event::parse_request(&rec, &self.intake.limits, Utc::now()) {
            Ok(request)
                if self
                    .share
                    .is_some_and(|share| self.book.load_of(&request.workspace) >= share) =>
            {
                src.set_aside(key, &request.workspace);
            }
            Ok(mut request) => {
                self.note(false)?;
                // The book keeps the request without its targets: their ids live on in the parts.
                let targets = std::mem::take(&mut request.targets);
                let request = Arc::new(request);
                let named = targets.iter().map(Target::ids).sum();
                self.book.add(key, request.clone(), named);
                let api = &self.intake.clients[&request.workspace];
                if let Some(resolved) = self.intake.resolver.cached(api, &targets) {
                    if !api.erases_examples() {
                        self.on_resolved(src, Piece::last(key, resolved));
                        return Ok(());
                    }
                    let traces = resolved.sessions.values().flatten().copied().collect();
                    self.on_resolved(src, Piece::first(key, resolved));
                    self.book.named_in_parts(key);
                    self.wait_for_scan(key, request, traces, src.stored(key.tp));
                    return Ok(());
                }
                self.resolve(key, request, targets, src.stored(key.tp));
            }
            Err(rejection) => {
                self.dead_letter(key, m, rejection);
                self.note(true)?;
            }
        }
        Ok(())
    }

    /// Counts valid and invalid events; stops the worker when nearly everything is invalid, since that
    /// means misconfiguration rather than bad luck.
    fn note(&mut self, invalid: bool) -> anyhow::Result<()> {
        let outcome = if invalid { "invalid" } else { "valid" };
        self.intake.metrics.events.with_label_values(&[outcome]).inc();
        self.invalid.note(invalid, &self.intake.config.intake)
    }

    /// Publishes the events held during a rebalance or an outage, but those of partitions that went
    /// elsewhere (their events were forgotten with them). Those still to hold are held again.
    fn publish_held(&mut self) {
        for (key, output) in std::mem::take(&mut self.held) {
            if self.book.contains(&key) {
                self.publish(key, output);
            }
        }
    }

    fn flush_all(&mut self) {
        for batch in self.coalescer.drain() {
            self.send_batch(batch);
        }
    }

    fn send_batch(&mut self, batch: Batch<BatchKey, PartKey>) {
        let ((workspace, session, found), ids, owners) = (batch.key, batch.ids, batch.owners);
        self.intake.metrics.batch_ids.observe(ids.len() as f64);
        self.calls_in_flight += 1;
        let sem = self.calls[&workspace].clone();
        let (intake, tx) = (self.intake.clone(), self.tx.reports.clone());
        let mut publishing = self.tx.publishing.subscribe();
        tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            // Nothing more is deleted while Kafka acknowledges nothing: the events could not go
            // out, and a replica that took the partition over would delete and publish it again.
            // Waited for with the permit, which the calls already past it hold while they wait for
            // the rate limit.
            let _ = publishing.wait_for(|ok| *ok).await;
            let api = &intake.clients[&workspace];
            let (started, from) = (std::time::Instant::now(), Utc::now());
            let rejected = delete(&intake, api, (session, found), &ids).await;
            let at = Utc::now();
            drop(permit);
            tracing::info!(workspace = %workspace, %session, ids = ids.len(), rejected = rejected.len(),
                elapsed_ms = started.elapsed().as_millis() as u64, "delete batch accepted");
            let audit = audit::records(&intake, api, &ids, &rejected, from).await;
            let answer = Answered {
                ids,
                rejected,
                audit,
                at,
            };
            let _ = tx.send(Report::Batch(BatchDone { owners, answer })).await;
        });
    }

    fn on_batch(&mut self, src: &mut Source, done: BatchDone) {
        self.calls_in_flight -= 1;
        let accepted = done.answer.ids.len() - done.answer.rejected.len();
        self.intake.metrics.traces_requested.inc_by(accepted as u64);
        for (msg, outputs) in self.book.batch_done(done.owners, &done.answer) {
            for o in outputs {
                self.publish(msg, o);
            }
            if self.book.finished(msg) {
                src.complete(msg);
            }
        }
    }
}
