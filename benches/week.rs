//! Weekly-burst verification benchmark (a program that prints figures, not a timed test): LangSmith
//! deletes in a weekly job, so a whole week of parts falls due at once. The intake requests the
//! deletes of REQUESTS requests (1–3 trace ids each, over 50 projects) and stops; the simulator's
//! deletion job runs; then a verifier starts with every part already due. The simulator applies
//! LangSmith's documented limits (v2 queries 300 per 10 s per key), the worker its default limits.
//! Prints the verification time (from the verifier's start to the last terminal event), the
//! queries per verified trace id and the 429s.
//!
//! Run: `cargo bench --bench week` (optional: `-- REQUESTS`, default 20,000; 200 as a smoke run
//! under `cargo test`). Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{drop_consumer, Broker, SimWorld};
use rdkafka::consumer::StreamConsumer;
use rdkafka::Message;
use serde_json::{json, Value};

const PROJECTS: usize = 50;

fn main() {
    let requests = common::size(20_000, 200);
    common::runtime().block_on(bench(requests));
}

async fn bench(requests: usize) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(PROJECTS, true);
    let topics = common::topics(&broker.bootstrap).await;
    let made = (0..requests).map(|i| {
        let session = sim.sessions[i % PROJECTS];
        let gen = json!({"session_id": session, "traces": 1 + i % 3, "return_ids": true});
        let (_, ids) = (sim.sim.state())
            .generate(sim.ws, serde_json::from_value(gen).unwrap())
            .unwrap();
        (i, session, ids)
    });
    common::publish(&common::producer(&broker.bootstrap), &topics[0], made).await;
    let extra = "[window]\nkind = \"fixed\"\ndelay = \"1s\"\n";

    let requested = common::reader(&broker.bootstrap, &[&topics[2]]);
    let mut intake = common::spawn_worker(&broker, &sim, &topics, "intake", extra);
    let started = Instant::now();
    let ids: usize = read(&requested, requests, |d| d["trace_ids"].as_array().unwrap().len())
        .await
        .iter()
        .sum();
    println!(
        "intake: {requests} requests ({ids} trace ids) requested in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    intake.terminate();
    drop_consumer(requested).await;
    let applied = sim.sim.run_window().applied_traces;
    assert_eq!(applied as usize, ids, "the deletion job applies every requested id");

    let before = sim.sim.counters().clone();
    let terminal = common::reader(&broker.bootstrap, &[&topics[4], &topics[5]]);
    let mut verifier = common::spawn_worker(&broker, &sim, &topics, "verifier", extra);
    let started = Instant::now();
    let outcomes = read(&terminal, requests, |d| d["trace_ids"].as_array().unwrap().len()).await;
    let took = started.elapsed().as_secs_f64();
    verifier.terminate();
    drop_consumer(terminal).await;
    let after = sim.sim.counters().clone();
    let queries = after.calls_to(&langsmith_sim::counters::V2_TRACES_QUERY)
        - before.calls_to(&langsmith_sim::counters::V2_TRACES_QUERY);
    let verified: usize = outcomes.iter().sum();
    println!(
        "verification: {requests} parts ({verified} trace ids) verified in {took:.1} s from the verifier's start; \
         {queries} v2 queries = {:.4} per verified trace id (1/{:.0}), {:.2} per part; {} answered 429",
        queries as f64 / verified as f64,
        verified as f64 / queries.max(1) as f64,
        queries as f64 / requests as f64,
        after.rate_limited - before.rate_limited
    );
    assert_eq!(verified, ids, "every requested trace id is verified");
}

/// Reads events from `reader` until `n` distinct keys were seen, each mapped by `f`; fails after
/// 30 minutes without progress.
async fn read<T>(reader: &StreamConsumer, n: usize, f: impl Fn(&Value) -> T) -> Vec<T> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while seen.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(1800), reader.recv())
            .await
            .expect("the worker stalled")
            .unwrap();
        let event: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_ne!(event["type"], "erasure.deletion.failed.v1", "nothing fails: {event}");
        if seen.insert(m.key().map(<[u8]>::to_vec)) {
            out.push(f(&event["data"]));
        }
    }
    out
}
