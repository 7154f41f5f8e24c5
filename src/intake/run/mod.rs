//! The intake loop: one task owns the consumer and all bookkeeping; resolution, delete calls and
//! publishing run as tasks that report back on channels. Offsets are stored only when an event's
//! every id is accepted and its every output event acknowledged, over the contiguous prefix.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

mod delete;
mod outputs;
mod pressure;
mod resolution;

use delete::delete;
use resolution::Piece;

use super::book::{Book, MsgKey, PartKey};
use super::coalesce::{Batch, Coalescer};
use super::invalid::InvalidShare;
use super::Intake;
use crate::api::Refusal;
use crate::aside::{self, Aside};
use crate::event::{self, Incoming, Target};
use crate::fence::{Arrival, Fence};
use crate::gaps::Gaps;
use crate::kafka::{Assignment, RebalanceReporter};
use crate::publish::PublishError;

type Consumer_ = StreamConsumer<RebalanceReporter>;
type BatchKey = (String, Uuid);

/// What a finished delete call reports.
struct BatchDone {
    ids: Vec<Uuid>,
    owners: Vec<(u32, PartKey)>,
    rejected: HashMap<Uuid, Refusal>,
    at: chrono::DateTime<Utc>,
}

/// An output event or a dead letter was published, or could not be (the worker then stops: the
/// input event stays unstored and is replayed).
enum Ack {
    Output(MsgKey, Result<(), PublishError>),
    Dlq(MsgKey, Result<(), PublishError>),
}

struct Channels {
    resolved: mpsc::Sender<Piece>,
    /// True while the in-flight ids are below the bound (the input is not paused).
    room: watch::Sender<bool>,
    batches: mpsc::Sender<BatchDone>,
    acks: mpsc::Sender<Ack>,
}

struct State {
    intake: Arc<Intake>,
    book: Book,
    fence: Fence<i32>,
    coalescer: Coalescer<BatchKey, PartKey>,
    /// Per workspace, so a workspace whose calls never return (a refused key, an outage) holds only
    /// its own work: delete calls in flight, and resolutions in flight.
    calls: HashMap<String, Arc<Semaphore>>,
    resolving: HashMap<String, Arc<Semaphore>>,
    tx: Channels,
    paused: bool,
    gaps: Gaps<i32>,
    /// Events of a workspace at its share of the bound, to read again once it has room.
    aside: Aside<i32>,
    share: Option<usize>,
    /// Partitions revoked by the rebalance under way: those not assigned again went elsewhere.
    revoked: Vec<i32>,
    dlq_pending: usize,
    invalid: InvalidShare,
    /// Delete batches sent and not answered; outputs queued and not acknowledged.
    calls_in_flight: usize,
    outputs_in_flight: usize,
}

/// Resolutions (project lookups, selector queries) in flight per workspace.
const RESOLUTIONS_PER_WORKSPACE: usize = 64;

pub async fn run(intake: Arc<Intake>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let cfg = &intake.config;
    let (assign_tx, mut assignments) = mpsc::unbounded_channel();
    // A bounded prefetch queue keeps memory down under a backlog; the rest is what the guarantee needs.
    let consumer: Consumer_ =
        crate::kafka::consumer_config(cfg, &cfg.kafka.intake_group, &[("queued.max.messages.kbytes", "16384")])
            .create_with_context(RebalanceReporter::new(assign_tx, intake.metrics.clone(), None))
            .context("creating the intake consumer")?;
    consumer
        .subscribe(&[&cfg.topics.requests])
        .context("subscribing to the requests topic")?;
    let (resolved_tx, mut resolved_rx) = mpsc::channel(1024);
    let (batch_tx, mut batch_rx) = mpsc::channel(1024);
    let (ack_tx, mut ack_rx) = mpsc::channel(4096);
    let per_workspace = |permits: usize| -> HashMap<String, Arc<Semaphore>> {
        let each = |w: &String| (w.clone(), Arc::new(Semaphore::new(permits)));
        cfg.workspaces.keys().map(each).collect()
    };
    let mut st = State {
        coalescer: Coalescer::new(cfg.intake.max_batch, cfg.intake.linger),
        intake: intake.clone(),
        book: Book::new(cfg.window.clone()),
        fence: Fence::default(),
        calls: per_workspace(cfg.intake.max_concurrent_calls),
        resolving: per_workspace(RESOLUTIONS_PER_WORKSPACE),
        tx: Channels {
            resolved: resolved_tx,
            room: watch::Sender::new(true),
            batches: batch_tx,
            acks: ack_tx,
        },
        paused: false,
        gaps: Gaps::new(),
        aside: Aside::default(),
        revoked: Vec::new(),
        share: aside::share(cfg.intake.max_in_flight_ids, cfg.workspaces.len()),
        dlq_pending: 0,
        invalid: InvalidShare::default(),
        calls_in_flight: 0,
        outputs_in_flight: 0,
    };
    tokio::pin!(shutdown);
    let mut grace: Option<Instant> = None;
    let result = loop {
        if grace.is_some() && st.book.messages() == 0 && st.dlq_pending == 0 {
            break Ok(());
        }
        let linger = st.coalescer.next_deadline().map(Instant::from_std);
        tokio::select! {
            biased;
            _ = &mut shutdown, if grace.is_none() => {
                tracing::info!(in_flight = st.book.messages(), "shutting down: finishing work in flight");
                grace = Some(Instant::now() + intake.config.intake.shutdown_grace);
                st.flush_all();
            }
            _ = crate::until::sleep_until(grace) => {
                tracing::warn!(in_flight = st.book.messages(), "shutdown grace elapsed: unfinished events will be replayed");
                break Ok(());
            }
            Some(a) = assignments.recv() => st.on_assignment(&consumer, a),
            Some(p) = resolved_rx.recv() => st.on_resolved(&consumer, p, grace.is_some()),
            Some(done) = batch_rx.recv() => st.on_batch(&consumer, done),
            Some(ack) = ack_rx.recv() => if let Err(e) = st.on_ack(&consumer, ack) {
                break Err(e);
            },
            _ = crate::until::sleep_until(linger) => {
                for batch in st.coalescer.expired(std::time::Instant::now()) {
                    st.send_batch(batch);
                }
            }
            m = consumer.recv(), if grace.is_none() => match m {
                Ok(m) => {
                    while let Ok(a) = assignments.try_recv() {
                        st.on_assignment(&consumer, a);
                    }
                    if let Err(e) = st.on_message(&consumer, &m) {
                        break Err(e);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "consumer error"),
            },
        }
        st.backpressure(&consumer);
    };
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit (nothing stored since the last one?)");
    }
    intake.publisher.flush(std::time::Duration::from_secs(5));
    tokio::task::spawn_blocking(move || drop(consumer)).await.ok();
    result
}

impl State {
    fn on_assignment(&mut self, consumer: &Consumer_, a: Assignment) {
        match a {
            Assignment::Assigned(parts) => {
                tracing::info!(?parts, "partitions assigned");
                // Whatever was paused before the rebalance, the new assignment starts resumed (as
                // the verifier does); backpressure decides afresh.
                self.set_paused(consumer, false, self.intake.config.intake.max_in_flight_ids);
                for (_, p) in &parts {
                    self.gaps.forget(p);
                    self.aside.forget(*p);
                    self.fence.assign(*p);
                }
                let moved = std::mem::take(&mut self.revoked);
                for p in moved.into_iter().filter(|p| !parts.iter().any(|(_, q)| q == p)) {
                    self.abandon(p);
                }
            }
            Assignment::Revoked(parts) => {
                tracing::info!(
                    ?parts,
                    "partitions revoked: unfinished events go on, and are replayed if another replica gets them"
                );
                for (_, p) in parts {
                    self.gaps.forget(&p);
                    // Events set aside are no work in flight: read again by whoever gets them.
                    let dropped = self.aside.forget(p);
                    self.fence.revoke(p, &dropped);
                    self.revoked.push(p);
                }
                self.flush_all();
            }
        }
    }

    /// `p` went to another replica, which replays what was not stored: the unfinished events of
    /// `p` here would only repeat its events, so they are forgotten (calls in flight go on).
    fn abandon(&mut self, p: i32) {
        let events = self.book.drop_partition(p);
        self.fence.abandon(p);
        if events > 0 {
            tracing::info!(
                partition = p,
                events,
                "partition went to another replica: its unfinished events are left to it"
            );
        }
    }

    fn on_message(&mut self, consumer: &Consumer_, m: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        let (partition, offset) = (m.partition(), m.offset());
        let key = MsgKey {
            partition,
            offset,
            generation: self.fence.generation(partition),
        };
        // Every delivery counts for gaps, a redelivery of work in flight too.
        if crate::gaps::read_again(&mut self.gaps, consumer, m, partition) {
            return Ok(());
        }
        self.aside.arrived(partition, offset);
        if self.book.contains(&key) {
            // Read again after a gap or events set aside, while its work goes on.
            tracing::debug!(partition, offset, "redelivered while in flight; ignored");
            return Ok(());
        }
        match self.fence.arrive(partition, offset) {
            Arrival::New(_) => {}
            // Work this replica did or does under an earlier assignment of the partition.
            Arrival::Adopted => return Ok(()),
            Arrival::Done(stored) => {
                self.store(consumer, partition, stored);
                return Ok(());
            }
        }
        let rec = Incoming::from_message(m);
        match event::parse_request(&rec, &self.intake.limits, Utc::now()) {
            Ok(request)
                if self
                    .share
                    .is_some_and(|share| self.book.load_of(&request.workspace) >= share) =>
            {
                self.aside.set_aside(partition, offset, &request.workspace);
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
                    self.on_resolved(consumer, Piece::last(key, resolved), false);
                    return Ok(());
                }
                self.resolve(key, request, targets);
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

    fn flush_all(&mut self) {
        for batch in self.coalescer.drain() {
            self.send_batch(batch);
        }
    }

    fn send_batch(&mut self, batch: Batch<BatchKey, PartKey>) {
        let ((workspace, session), ids, owners) = (batch.key, batch.ids, batch.owners);
        self.intake.metrics.batch_ids.observe(ids.len() as f64);
        self.calls_in_flight += 1;
        let sem = self.calls[&workspace].clone();
        let (intake, tx) = (self.intake.clone(), self.tx.batches.clone());
        tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let api = &intake.clients[&workspace];
            let started = std::time::Instant::now();
            let rejected = delete(&intake, api, session, &ids).await;
            tracing::info!(workspace = %workspace, %session, ids = ids.len(), rejected = rejected.len(),
                elapsed_ms = started.elapsed().as_millis() as u64, "delete batch accepted");
            let _ = tx
                .send(BatchDone {
                    ids,
                    owners,
                    rejected,
                    at: Utc::now(),
                })
                .await;
        });
    }

    fn on_batch(&mut self, consumer: &Consumer_, done: BatchDone) {
        self.calls_in_flight -= 1;
        let accepted = done.ids.len() - done.rejected.len();
        self.intake.metrics.traces_requested.inc_by(accepted as u64);
        for (msg, outputs) in self.book.batch_done(done.owners, &done.ids, &done.rejected, done.at) {
            for o in outputs {
                self.publish(msg, o);
            }
            if self.book.finished(msg) {
                self.complete(consumer, msg);
            }
        }
    }
}
