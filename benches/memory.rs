//! The intake's memory under the two loads that used to grow it without bound (a program that
//! prints figures, not a timed test):
//!
//! - `wide`: 50 selectors, each matching 100,000 traces of its own project. A selector's pages go to
//!   delete calls as they come, within `max_in_flight_ids` (default 100,000).
//! - `outage`: a backlog of 1,000,000 events (1 to 3 ids each, 50 projects) while the sessions
//!   endpoint answers 503 for the first 60 s, so no project can be looked up; then it recovers.
//!
//! Prints the worker's peak RSS (VmHWM, and the highest VmRSS sampled every 100 ms) and how long the
//! load took. Run: `scripts/bench memory` (both; `scripts/bench memory-wide` or `memory-outage` for
//! one; `-- N` selectors or events). A smoke run (2 selectors of 2,000; 2,000 events, a 2 s outage)
//! under `cargo test`. Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{status_kib, Broker, SimWorld, Worker};
use langsmith_sim::faults::{Class, FaultSpec};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use serde_json::json;
use uuid::Uuid;

const PROJECTS: usize = 50;

/// The worker's limits are raised out of the way: the figures are its memory, not LangSmith's quota.
const LIMITS: &str =
    "[limits]\nscope = \"replica\"\ndelete_per_second = 1000\nquery_per_second = 1000\nquery_wide_per_second = 1000\n\
                      query_v2_per_second = 2000\nsessions_per_second = 1000\n";

fn main() {
    let which = std::env::var("BENCH_MEMORY").unwrap_or_else(|_| "both".into());
    let rt = common::runtime();
    if which != "outage" {
        let (selectors, traces) = if common::full() {
            (common::size(50, 2), 100_000)
        } else {
            (2, 2_000)
        };
        rt.block_on(wide(selectors, traces));
    }
    if which != "wide" {
        let outage = Duration::from_secs(if common::full() { 60 } else { 2 });
        rt.block_on(outage_backlog(common::size(1_000_000, 2_000), outage));
    }
}

async fn wide(selectors: usize, traces: usize) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(selectors, false);
    let t = Instant::now();
    for (i, s) in sim.sessions.iter().enumerate() {
        let gen = json!({"session_id": s, "traces": traces,
                         "metadata": [{"key": "user_id", "prefix": format!("s{i}-"), "distinct": 1}]});
        sim.sim
            .state()
            .generate(sim.ws, serde_json::from_value(gen).unwrap())
            .unwrap();
    }
    println!(
        "wide: {selectors} projects of {traces} traces loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let topics = common::topics(&broker.bootstrap).await;
    let producer = common::producer(&broker.bootstrap);
    for (i, s) in sim.sessions.iter().enumerate() {
        let target = json!({"session_id": s, "metadata": {"user_id": format!("s{i}-0")}});
        let data = json!({"request_id": format!("w-{i}"), "targets": [target]});
        let ev = json!({"specversion": "1.0", "id": format!("w{i}"), "source": "urn:bench",
                        "type": "erasure.requested.v1", "data": data});
        let payload = serde_json::to_vec(&ev).unwrap();
        let key = format!("w-{i}");
        let record = FutureRecord::to(&topics[0]).key(&key).payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let reader = common::reader(&broker.bootstrap, &[&topics[2]]);
    let t = Instant::now();
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "intake", LIMITS);
    // One deletion-requested event per part of 1,000 traces.
    let parts = selectors * traces.div_ceil(1000);
    let peak = drain(&reader, &worker, parts).await;
    let elapsed = t.elapsed().as_secs_f64();
    report("wide", &worker, peak);
    println!(
        "wide: {selectors} selectors of {traces} traces each: {parts} parts requested in {elapsed:.1} s ({:.0} traces/s)",
        (selectors * traces) as f64 / elapsed
    );
    common::drop_consumer(reader).await;
    worker.terminate();
}

async fn outage_backlog(events: usize, outage: Duration) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(PROJECTS, false);
    let topics = common::topics(&broker.bootstrap).await;
    let producer = common::producer(&broker.bootstrap);
    let t = Instant::now();
    let requests = (0..events).map(|i| {
        let ids = (0..1 + i % 3).map(|_| Uuid::new_v4()).collect();
        (i, sim.sessions[i % PROJECTS], ids)
    });
    common::publish(&producer, &topics[0], requests).await;
    println!("outage: {events} events produced in {:.1} s", t.elapsed().as_secs_f64());
    let down = FaultSpec {
        error_ratio: 1.0,
        ..Default::default()
    };
    sim.sim.faults().set(Class::Sessions, down);
    let reader = common::reader(&broker.bootstrap, &[&topics[2]]);
    let t = Instant::now();
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "intake", LIMITS);
    let sim_ = sim.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(outage).await;
        sim_.faults().set(Class::Sessions, FaultSpec::default());
    });
    let peak = drain(&reader, &worker, events).await;
    let elapsed = t.elapsed().as_secs_f64();
    report("outage", &worker, peak);
    println!(
        "outage: {events} events, sessions endpoint down for the first {} s: all requested {elapsed:.1} s after the worker started",
        outage.as_secs()
    );
    common::drop_consumer(reader).await;
    worker.terminate();
}

/// Reads output events until `want` distinct ones (by CloudEvents id) have been seen, sampling the
/// worker's RSS; returns the highest sample in KiB.
async fn drain(reader: &StreamConsumer, worker: &Worker, want: usize) -> u64 {
    let mut seen = HashSet::with_capacity(want);
    let mut peak = 0;
    let mut sample = tokio::time::interval(Duration::from_millis(100));
    while seen.len() < want {
        tokio::select! {
            m = tokio::time::timeout(Duration::from_secs(300), reader.recv()) => {
                let m = m.expect("no output for 300 s: the worker stalled").unwrap();
                let event: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
                seen.insert(event["id"].as_str().unwrap_or_default().to_owned());
            }
            _ = sample.tick() => peak = peak.max(status_kib(worker.id(), "VmRSS:")),
        }
    }
    reader.unsubscribe();
    peak
}

fn report(what: &str, worker: &Worker, peak_kib: u64) {
    println!(
        "{what}: worker peak RSS {:.0} MiB (VmHWM), {:.0} MiB (highest sampled VmRSS)",
        status_kib(worker.id(), "VmHWM:") as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
}
