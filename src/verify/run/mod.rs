//! The verifier's part of the loop (`source::run` drives it): the parked partition heads and the
//! checks in flight; checks run as tasks and report back. A record's offset is stored only once
//! its outcome is acknowledged.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::message::OwnedMessage;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod pressure;
mod tasks;

use super::parked::{Offer, Parked};
use super::Verifier;
use crate::event::{self, DeletionRequested};
use crate::publish::PublishError;
use crate::source::{Source, Subscription, Ticket, Tp, Work};

/// What a task reports: a record's outcome was published, or could not be.
type Report = (Ticket, Result<(), PublishError>);

/// Checks allowed in flight per permit of `max_concurrent_checks` (4,096 by default; a check in
/// flight holds one part). Each pause and resume costs about a second before records flow again
/// (measured against Tansu): at 4 per permit the verifier managed 64 parts/s however high the query
/// limits (`scripts/bench verify-backlog`), at 64 per permit 1,007. Parts waiting for their
/// project's query fill the bound too: a week falling due at once (`scripts/bench verify-week`)
/// took 40.8 s at 64 per permit, 19.0 s at 256.
const IN_FLIGHT_PER_CHECK: usize = 256;

/// Trace ids the checks in flight may hold per permit (65,536 by default, about a megabyte), so
/// that parts of up to 1,000 ids each fill the bound at 65 parts, not 4,096.
const IDS_IN_FLIGHT_PER_CHECK: usize = 16 * IN_FLIGHT_PER_CHECK;

/// How often the gauges of what is held are set.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// What the metrics and the shares of the bound need to know of a part held unverified.
struct Held {
    accepted_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    workspace: String,
    ids: usize,
}

struct State {
    v: Arc<Verifier>,
    /// Partition heads not due yet, and the records behind them; their partitions are held paused.
    parked: Parked<Tp, (Ticket, DeletionRequested)>,
    /// Checks (and dead-letterings, with no `Held`) not finished yet.
    in_flight: HashMap<Ticket, Option<Held>>,
    /// The trace ids of the checks in flight.
    ids_in_flight: usize,
    /// Checks in flight per workspace, and the share of the in-flight bound each may hold before
    /// its further parts are set aside (with several workspaces).
    load: HashMap<String, usize>,
    share: Option<usize>,
    /// Set for a check whose partition went to another replica: it publishes nothing.
    cancels: HashMap<Ticket, Arc<AtomicBool>>,
    /// True while a rebalance is under way (partitions revoked, not yet assigned again): checks
    /// that end meanwhile wait to publish until it is known whether their partition stayed. Offsets
    /// cannot be stored meanwhile, so the new owner of one that went elsewhere would repeat them.
    rebalancing: watch::Sender<bool>,
    done: mpsc::Sender<Report>,
    gauges_at: Instant,
    stopping: bool,
}

pub async fn run(v: Arc<Verifier>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let cfg = &v.config;
    let sub = Subscription {
        group: &cfg.kafka.verifier_group,
        topics: vec![cfg.topics.deletion_requested.clone(), cfg.topics.recheck.clone()],
        defaults: &[],
        lag: Some(v.metrics.pending_verifications.clone()),
        role: crate::share::Role::Verifier,
        clients: v.clients.clone(),
    };
    let work = |done| State {
        cancels: HashMap::new(),
        rebalancing: watch::Sender::new(false),
        load: HashMap::new(),
        share: crate::source::share(
            cfg.verifier.max_concurrent_checks * IN_FLIGHT_PER_CHECK,
            cfg.workspaces.len(),
        ),
        v: v.clone(),
        parked: Parked::new(),
        in_flight: HashMap::new(),
        ids_in_flight: 0,
        done,
        gauges_at: Instant::now(),
        stopping: false,
    };
    crate::source::consume(cfg, v.metrics.clone(), sub, work, shutdown).await
}

impl Work for State {
    type Report = Report;
    const ROLE: &'static str = "verifier";

    fn record(&mut self, src: &mut Source, t: Ticket, m: &OwnedMessage) -> anyhow::Result<()> {
        let part = event::decode::<DeletionRequested>(event::DELETION_REQUESTED_TYPE, rdkafka::Message::payload(m));
        match part {
            // Config drift between replicas: the part still ends, in an event an auditor sees.
            Ok(part) if !self.v.clients.contains_key(&part.workspace) => self.unknown_workspace(t, part),
            // Its workspace holds its share of the bound (stuck, or just busy): read again later.
            Ok(part) if self.at_share(&part.workspace) => src.set_aside(t, &part.workspace),
            Ok(part) => {
                let due = super::check::due(&self.v.config.window, &part, m);
                match self.parked.offer(t.tp, due, (t, part), Utc::now()) {
                    Offer::Now((t, part)) => self.start(t, part),
                    // Not due: its partition waits until it is.
                    Offer::Head => src.hold(t.tp),
                    Offer::Behind => {}
                }
            }
            Err(why) => self.dead_letter(t, m, why),
        }
        Ok(())
    }

    /// A check's outcome is acknowledged: its record is done. An outcome that Kafka will never
    /// take stops the worker, loudly, with its offset unstored.
    fn report(&mut self, src: &mut Source, (t, sent): Report) -> anyhow::Result<()> {
        if let Some(Some(held)) = self.in_flight.remove(&t) {
            if let Some(n) = self.load.get_mut(&held.workspace) {
                *n -= 1;
            }
            self.ids_in_flight -= held.ids;
        }
        self.cancels.remove(&t);
        if let Err(e) = sent {
            anyhow::bail!(
                "an outcome of the record at {} partition {} offset {} was not published ({e}); stopping, \
                 so that it is checked again once the cause is mended",
                src.topic(t.tp),
                t.tp.1,
                t.offset
            );
        }
        src.complete(t);
        Ok(())
    }

    fn holds(&self, t: &Ticket) -> bool {
        self.in_flight.contains_key(t) || self.parked.of(&t.tp).any(|(k, _)| k == t)
    }

    /// The parked records of `tp` are dropped (redelivered, they are parked again).
    fn release(&mut self, tp: Tp) -> Vec<i64> {
        let dropped = self.parked.of(&tp).map(|(k, _)| k.offset).collect();
        self.parked.remove(&tp);
        dropped
    }

    fn abandon(&mut self, tp: Tp) {
        self.cancel(tp);
    }

    fn revoked(&mut self, _: &mut Source) {
        self.rebalancing.send_replace(true);
    }

    /// After [`Work::abandon`]: the checks of partitions gone elsewhere are cancelled already.
    fn assigned(&mut self, _: &mut Source) {
        self.rebalancing.send_replace(false);
    }

    fn deadline(&self) -> Option<Instant> {
        let gauges = self.gauges_at + GAUGES_EVERY;
        let due = self.parked.next_due().map(|due| {
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            Instant::now() + wait
        });
        Some(due.map_or(gauges, |due| due.min(gauges)))
    }

    /// Starts the checks of the parked records that are due, in order, and lets the partitions with
    /// none left waiting flow; sets the gauges when their time comes.
    fn timer(&mut self, src: &mut Source) {
        if Instant::now() >= self.gauges_at + GAUGES_EVERY {
            self.gauges_at = Instant::now();
            self.update_gauges();
        }
        if self.stopping {
            return;
        }
        let (due, resumed) = self.parked.take_due(Utc::now());
        for (t, part) in due {
            self.start(t, part);
        }
        src.release_holds(&resumed);
    }

    fn turn(&mut self, src: &mut Source) {
        self.backpressure(src);
    }

    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn shutdown(&mut self, _: &mut Source) {
        self.stopping = true;
        self.rebalancing.send_replace(false);
        self.parked.clear();
    }

    fn closed(&mut self) {
        self.v.publisher.flush(Duration::from_secs(5));
    }
}
