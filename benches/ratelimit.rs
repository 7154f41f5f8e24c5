//! Rate-limit utilisation (a program that prints figures, not a timed test): the simulator allows
//! L delete calls per second and key (fixed one-second windows), the worker is configured at L, and a
//! backlog keeps it busy. Prints the achieved rate of accepted calls as a share of L, and the 429s
//! the worker received. Small batches (`max_batch` 10) make many calls from a modest backlog.
//!
//! Run: `cargo bench --bench ratelimit` (optional: `-- L`, default 20; the backlog is 60 s of calls
//! at L; a smoke run of 5 s under `cargo test`). Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::time::{Duration, Instant};

use common::{Broker, SimWorld};
use langsmith_sim::faults::{Class, FaultSpec, RateLimit};
use uuid::Uuid;

const BATCH: usize = 10;

fn main() {
    let limit = common::size(20, 20) as u32;
    let seconds = if common::full() { 60 } else { 5 };
    common::runtime().block_on(bench(limit, seconds));
}

async fn bench(limit: u32, seconds: u64) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(20, false);
    let spec = FaultSpec {
        rate_limit: Some(RateLimit {
            requests: limit,
            window_ms: 1000,
            retry_after: false,
            plain_body: false,
        }),
        ..Default::default()
    };
    sim.sim.faults().set(Class::Delete, spec);
    let topics = common::topics(&broker.bootstrap).await;

    // Two ids per event: BATCH / 2 events fill a call; enough for `seconds` of calls at L.
    let calls = limit as usize * seconds as usize;
    let events = calls * BATCH / 2;
    let producer = common::producer(&broker.bootstrap);
    let sessions = &sim.sessions;
    let requests = (0..events).map(|i| (i, sessions[i % sessions.len()], vec![Uuid::new_v4(), Uuid::new_v4()]));
    common::publish(&producer, &topics[0], requests).await;
    println!(
        "backlog: {events} events, {} trace ids over {} projects",
        events * 2,
        sim.sessions.len()
    );

    let extra = format!(
        "[limits]\nscope = \"replica\"\ndelete_per_second = {limit}\n[intake]\nmax_batch = {BATCH}\nlinger = \"2s\"\n"
    );
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "intake", &extra);
    let accepted = || sim.sim.counters().delete_calls_accepted;
    let start = Instant::now();
    let mut first = None;
    let mut last = (Instant::now(), 0);
    while accepted() < (events * 2).div_ceil(BATCH) as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = accepted();
        if n > 0 {
            first.get_or_insert((Instant::now(), n));
        }
        if n > last.1 {
            last = (Instant::now(), n);
        }
        assert!(
            start.elapsed() < Duration::from_secs(seconds * 10 + 60),
            "the worker stalled at {n} calls"
        );
    }
    worker.terminate();
    let (t0, n0) = first.unwrap();
    let rate = (last.1 - n0) as f64 / (last.0 - t0).as_secs_f64();
    let c = sim.sim.counters().clone();
    println!(
        "rate-limit utilisation: {} accepted delete calls; {rate:.2} calls/s against a limit of {limit}/s = {:.3} of L; 429s received: {}",
        c.delete_calls_accepted,
        rate / limit as f64,
        c.rate_limited
    );
}
