//! Scale-out against one key's quota (a program that prints figures, not a timed test). The
//! simulator allows L delete calls per second and key, counted in 10-second windows as LangSmith
//! does; the worker's `[limits]` are workspace-wide totals a little under L (and the v2 queries that
//! check where named traces live before each delete, which the simulator does not limit here, out
//! of the way). Intake replicas join and die over a backlog of 12 partitions: three run, one is
//! killed, one joins, another joins (four run). Each phase prints the accepted calls per second as a
//! share of L and the 429s received; after the kill, how long the survivors took to use ≥ 0.9 L
//! again (their shares grow once the dead replica's session expires: 6 s here).
//!
//! Run: `cargo bench --bench scaleout` (optional: `-- L`, default 20; `BENCH_SCOPE=replica` for
//! per-replica limits divided by hand for three replicas, as before `limits.scope`). A smoke run
//! of three replicas for a few seconds under `cargo test`. Needs Tansu (`scripts/kafka-broker
//! install`).

mod common;

use std::time::{Duration, Instant};

use common::{Broker, SimWorld, Worker};
use langsmith_sim::faults::{Class, FaultSpec, RateLimit};
use langsmith_sim::Sim;
use uuid::Uuid;

const BATCH: usize = 10;
const PARTITIONS: i32 = 12;
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// The share of the key's quota the worker is configured at: replicas that do not coordinate can
/// each land one request more in a window than their rate gives.
const MARGIN: f64 = 0.97;
/// The verifier's fraction of the delete class (no verifier runs here; the intake takes the rest).
const VERIFIER_FRACTION: f64 = 0.05;

fn main() {
    let limit = common::size(20, 20) as u32;
    common::runtime().block_on(bench(limit, common::full()));
}

/// The simulator's accepted delete calls and 429s, sampled.
struct Calls<'a> {
    sim: &'a Sim,
    limit: f64,
}

impl Calls<'_> {
    fn now(&self) -> (u64, u64) {
        let c = self.sim.counters();
        (c.delete_calls_accepted, c.rate_limited)
    }

    /// Waits `settle`, then measures for `measure`; prints and returns the share of L used.
    async fn phase(&self, what: &str, settle: Duration, measure: Duration) -> f64 {
        tokio::time::sleep(settle).await;
        let (calls0, limited0) = self.now();
        let t0 = Instant::now();
        tokio::time::sleep(measure).await;
        let (calls, limited) = self.now();
        let rate = (calls - calls0) as f64 / t0.elapsed().as_secs_f64();
        println!(
            "{what}: {rate:.2} calls/s = {:.3} of L; 429s in the phase: {}",
            rate / self.limit,
            limited - limited0
        );
        rate / self.limit
    }

    /// How long until a 5-second window of calls reaches `share` of L (at most `within`).
    async fn recovered(&self, share: f64, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut samples = std::collections::VecDeque::new();
        while start.elapsed() < within {
            samples.push_back((Instant::now(), self.now().0));
            while samples.len() > 1 && samples[0].0.elapsed() > Duration::from_secs(5) {
                samples.pop_front();
            }
            let (t, n) = samples[0];
            let span = t.elapsed().as_secs_f64();
            if span >= 4.5 && (self.now().0 - n) as f64 / span >= share * self.limit {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }
}

async fn bench(limit: u32, full: bool) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(24, false);
    let spec = FaultSpec {
        rate_limit: Some(RateLimit {
            requests: limit * 10,
            window_ms: 10_000,
            retry_after: false,
            plain_body: false,
        }),
        ..Default::default()
    };
    sim.sim.faults().set(Class::Delete, spec);
    let topics = common::topics_of(&broker.bootstrap, PARTITIONS).await;
    // Two ids per event, BATCH ids per call: enough events for 200 s of calls at L.
    let events = limit as usize * 200 * BATCH / 2;
    let producer = common::producer(&broker.bootstrap);
    let sessions = &sim.sessions;
    let requests = (0..events).map(|i| (i, sessions[i % sessions.len()], vec![Uuid::new_v4(), Uuid::new_v4()]));
    common::publish(&producer, &topics[0], requests).await;
    let (what, extra) = limits(limit);
    println!(
        "backlog: {events} events over {PARTITIONS} partitions; simulator: {} delete calls per 10 s per key \
         (L = {limit}/s); worker: {what}",
        limit * 10
    );
    // Quoted: librdkafka's properties are strings, and an override is read as TOML.
    let session = format!("\"{}\"", SESSION_TIMEOUT.as_millis());
    let env = [
        ("ERASURE__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS", session.as_str()),
        ("ERASURE__KAFKA__PROPERTIES__HEARTBEAT_INTERVAL_MS", "\"1000\""),
    ];
    let spawn = || common::spawn_worker_env(&broker, &sim, &topics, "intake", &extra, &env);
    let calls = Calls {
        sim: &sim.sim,
        limit: limit as f64,
    };
    let replicas: Vec<Worker> = (0..3).map(|_| spawn()).collect();
    if !full {
        calls
            .phase("smoke, three replicas", Duration::from_secs(5), Duration::from_secs(5))
            .await;
        stop(replicas);
        return;
    }
    stop(phases(&calls, replicas, spawn).await);
}

/// Three replicas; one killed (and how long until the survivors use 0.9 L again); one joins;
/// another joins. Returns the replicas left.
async fn phases(calls: &Calls<'_>, mut replicas: Vec<Worker>, spawn: impl Fn() -> Worker) -> Vec<Worker> {
    let (settle, measure) = (Duration::from_secs(15), Duration::from_secs(20));
    calls.phase("three replicas", settle, measure).await;
    let mut killed = replicas.remove(0);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let within = SESSION_TIMEOUT + Duration::from_secs(10);
    match calls.recovered(0.9, within * 2).await {
        Some(t) => println!(
            "one replica killed: ≥ 0.9 L again after {:.1} s (bound: {within:?})",
            t.as_secs_f64()
        ),
        None => println!("one replica killed: not back to 0.9 L within {:?}", within * 2),
    }
    calls.phase("two survivors", Duration::ZERO, measure).await;
    replicas.push(spawn());
    calls.phase("a replica joins (three)", settle, measure).await;
    replicas.push(spawn());
    calls.phase("another joins (four)", settle, measure).await;
    println!("429s in all: {}", calls.now().1);
    replicas
}

/// The worker's `[limits]`, and what they are: workspace-wide totals a little under L; or, with
/// BENCH_SCOPE=replica, what an operator of three replicas had to write before: a third each.
fn limits(limit: u32) -> (String, String) {
    let l = limit as f64;
    let (scope, rate, what) = if std::env::var("BENCH_SCOPE").is_ok_and(|s| s == "replica") {
        let rate = l * MARGIN / 3.0;
        let what = format!("scope = \"replica\", delete_per_second = {rate:.2} (a third of {MARGIN} L each)");
        ("replica", rate, what)
    } else {
        let total = l * MARGIN / (1.0 - VERIFIER_FRACTION);
        let intake = (1.0 - VERIFIER_FRACTION) * 100.0;
        let what =
            format!("scope = \"workspace\", delete_per_second = {total:.2} (the intake's {intake:.0} %: {MARGIN} L)");
        ("workspace", total, what)
    };
    let extra = format!(
        "[limits]\nscope = \"{scope}\"\ndelete_per_second = {rate}\nquery_v2_per_second = 1000\n\
         [limits.verifier_fraction]\ndelete = {VERIFIER_FRACTION}\n[intake]\nmax_batch = {BATCH}\nlinger = \"1s\"\n"
    );
    (what, extra)
}

fn stop(replicas: Vec<Worker>) {
    for mut r in replicas {
        r.terminate();
    }
}
