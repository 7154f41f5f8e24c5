//! Verification benchmark (a program that prints figures, not a timed test): the worker runs both
//! roles under the default query limits (its own `query_v2_per_second` default against the
//! simulator's documented 300 per 10 s), a fixed 5 s window, and the simulator's deletion job every
//! second. Requests name traces that exist. Prints queries per verified part and the verify
//! throughput from the first verified event to the last.
//!
//! Run: `cargo bench --bench verify` (optional: `-- REQUESTS`, default 3,000; 100 as a smoke run
//! under `cargo test`). Needs Tansu (`scripts/kafka-broker install`).
//!
//! `BENCH_QUERY_PER_SECOND=N` measures the worker itself instead: the simulator without rate
//! limits, the worker's query limits at N per second (`scripts/bench verify-backlog`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{drop_consumer, Broker, SimWorld};
use langsmith_sim::window::Schedule;
use rdkafka::Message;
use serde_json::json;

fn main() {
    let requests = common::size(3_000, 100);
    common::runtime().block_on(bench(requests));
}

async fn bench(requests: usize) {
    let broker = Broker::start(None);
    let unlimited: Option<u32> = std::env::var("BENCH_QUERY_PER_SECOND")
        .ok()
        .map(|v| v.parse().expect("BENCH_QUERY_PER_SECOND is a whole number"));
    let sim = SimWorld::start(20, unlimited.is_none());
    sim.sim.set_schedule(Schedule::Every { seconds: 1.0 });
    let topics = common::topics(&broker.bootstrap).await;
    let producer = common::producer(&broker.bootstrap);
    let made: Vec<_> = (0..requests)
        .map(|i| {
            let session = sim.sessions[i % sim.sessions.len()];
            let gen = json!({"session_id": session, "traces": 1 + i % 3, "return_ids": true});
            let (_, ids) = sim
                .sim
                .state()
                .generate(sim.ws, serde_json::from_value(gen).unwrap())
                .unwrap();
            (i, session, ids)
        })
        .collect();
    common::publish(&producer, &topics[0], made.into_iter()).await;
    let reader = common::reader(&broker.bootstrap, &[&topics[4], &topics[5]]);
    let mut extra = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"5s\"\n".to_owned();
    if let Some(n) = unlimited {
        extra += &format!("[limits]\nscope = \"replica\"\nquery_per_second = {n}\nquery_v2_per_second = {n}\n");
    }
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "all", &extra);
    let start = Instant::now();
    let mut done = HashSet::with_capacity(requests);
    let (mut first, mut last, mut failed) = (None, start, 0);
    while done.len() < requests {
        let m = tokio::time::timeout(Duration::from_secs(600), reader.recv())
            .await
            .expect("the worker stalled")
            .unwrap();
        if m.topic() == topics[5] {
            failed += 1;
        }
        done.insert(m.key().map(<[u8]>::to_vec));
        first.get_or_insert_with(Instant::now);
        last = Instant::now();
    }
    worker.terminate();
    drop_consumer(reader).await;
    let c = sim.sim.counters().clone();
    let queries = c.calls_to(&langsmith_sim::counters::V2_TRACES_QUERY);
    let span = (last - first.unwrap()).as_secs_f64().max(0.001);
    println!(
        "verification: {requests} requests (one part each) verified {:.1} s after the worker started; {failed} failed",
        (last - start).as_secs_f64()
    );
    println!(
        "queries per verified part: {:.2} ({queries} v2 queries, {} answered 429); verify throughput {:.1} parts/s from the first verified event to the last; query limit {} per second",
        queries as f64 / requests as f64,
        c.rate_limited,
        (requests - 1) as f64 / span,
        unlimited
            .map(f64::from)
            .unwrap_or(erasure_worker::config::Limits::default().query_v2_per_second)
    );
    assert_eq!(failed, 0, "every trace exists and is deleted");
}
