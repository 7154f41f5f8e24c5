//! Two replicas sharing LangSmith's documented v1 query limits on a selector-heavy load (a program
//! that prints figures, not a timed test). The simulator enforces LangSmith's documented limits
//! for one key: v1 `runs/query` 15 per 10 s per key, and per workspace 10 per 10 s over at most
//! 7 days of start times, 3 per 10 s over more or without a start time. Two intake replicas each
//! take `floor(N / 2)` of every window (the README's rule): `query_per_second = 0.5`,
//! `query_wide_per_second = 0.1`. Half the selectors name a recent `start_time` (the 10 per 10 s
//! tier), half none (the 3 per 10 s tier). Prints the 429s received and the share of each tier used.
//!
//! Run: `scripts/bench selectors` (`-- N` selectors, default 40; a smoke run of 4 under
//! `cargo test`). BENCH_QUERY_PER_SECOND=R sets both query limits to R per replica instead (1 was
//! the old minimum: 20 per 10 s from two replicas). `BENCH_DEFAULTS=1` runs one replica with the
//! default limits instead (`scripts/bench selectors-many`: 1,000 selectors; v2 queries are limited
//! to LangSmith's documented 300 per 10 s). Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Broker, SimWorld};
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use serde_json::json;

fn main() {
    let selectors = common::size(40, 4);
    common::runtime().block_on(bench(selectors));
}

fn selector(i: usize) -> Vec<u8> {
    let mut target = json!({"metadata": {"user_id": format!("u-{i}")}});
    if i.is_multiple_of(2) {
        // Recent enough for LangSmith's faster tier (a range of at most 7 days).
        target["start_time"] = json!((chrono::Utc::now() - chrono::TimeDelta::days(2)).to_rfc3339());
    }
    let data = json!({"request_id": format!("s-{i}"), "targets": [target]});
    serde_json::to_vec(
        &json!({"specversion": "1.0", "id": format!("e-{i}"), "source": "urn:bench",
        "type": "erasure.requested.v1", "datacontenttype": "application/json", "data": data}),
    )
    .unwrap()
}

async fn bench(n: usize) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(5, true);
    for s in &sim.sessions {
        let gen = json!({"session_id": s, "traces": 2 * n, "spread_seconds": 3600,
                         "metadata": [{"key": "user_id", "prefix": "u-", "distinct": n}]});
        sim.sim
            .state()
            .generate(sim.ws, serde_json::from_value(gen).unwrap())
            .unwrap();
    }
    let topics = common::topics(&broker.bootstrap).await;
    let producer = common::producer(&broker.bootstrap);
    for i in 0..n {
        let (key, payload) = (format!("s-{i}"), selector(i));
        let record = rdkafka::producer::FutureRecord::to(&topics[0])
            .key(&key)
            .payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let defaults = std::env::var_os("BENCH_DEFAULTS").is_some();
    let limits = match std::env::var("BENCH_QUERY_PER_SECOND") {
        _ if defaults => String::new(),
        Ok(r) => format!("[limits]\nscope = \"replica\"\nquery_per_second = {r}\nquery_wide_per_second = {r}\n"),
        Err(_) => "[limits]\nscope = \"replica\"\nquery_per_second = 0.5\nquery_wide_per_second = 0.1\n".into(),
    };
    let extra = format!("{limits}[intake]\nlinger = \"500ms\"\n");
    let replicas = if defaults { 1 } else { 2 };
    println!(
        "{n} selectors (half over 2 days, half with no start time; 10 traces each), 5 projects, {replicas} intake \
         replica(s) with {}",
        if defaults { "the default limits\n" } else { &limits }
    );
    let reader = common::reader(&broker.bootstrap, &[&topics[2], &topics[5]]);
    let start = Instant::now();
    let workers: Vec<_> = (0..replicas)
        .map(|_| common::spawn_worker(&broker, &sim, &topics, "intake", &extra))
        .collect();
    let mut done = HashSet::new();
    while done.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(600), reader.recv())
            .await
            .expect("the replicas stalled")
            .unwrap();
        done.insert(m.key().map(<[u8]>::to_vec));
    }
    let elapsed = start.elapsed().as_secs_f64();
    for mut w in workers {
        w.terminate();
    }
    reader.unsubscribe();
    common::drop_consumer(reader).await;
    let c = sim.sim.counters().clone();
    if std::env::var_os("BENCH_DEBUG").is_some() {
        println!("{:#?}", c.calls);
    }
    let queries = c.calls_to(&["POST /runs/query"]);
    let v2 = c.calls_to(&["POST /api/v2/runs/query", "POST /v2/runs/query"]);
    let limited = c
        .calls
        .get("POST /runs/query")
        .and_then(|s| s.get(&429))
        .copied()
        .unwrap_or(0);
    println!(
        "selectors resolved: {n} in {elapsed:.1} s ({:.1} per second); v1 queries {queries} ({limited} answered 429), \
         v2 runs/query {v2} (selectors and the look before each delete); 429s in all: {}",
        n as f64 / elapsed,
        c.rate_limited,
    );
}
