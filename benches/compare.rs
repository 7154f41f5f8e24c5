//! The worker side by side with the hand pipeline LangSmith's support suggests (a program that
//! prints figures, not a timed test). Both get a backlog of REQUESTS requests of the same shape (1–3
//! trace ids each, over 50 projects; each its own traces) from Kafka, and the same simulator: every
//! call answered after 50 ms (`BENCH_LATENCY_MS`), no rate limits. That is generous to the hand
//! pipeline: its 20 queries a second would exceed LangSmith's documented v1 `runs/query` limit (15 per
//! 10 s per key), and the worker keeps its default limits.
//!
//! The hand pipeline, sequentially: per request, delete its ids per project in calls of at most
//! 1,000 (`POST /api/v1/runs/delete`), record them, commit the offset; after the weekend, query each
//! recorded request's ids (`POST /api/v1/runs/query` with `id`) and see that none is left. The
//! worker: its intake until every part is requested; the weekly job; its verifier until every part
//! is verified. Prints both, and their ratios.
//!
//! Run: `cargo bench --bench compare` (optional: `-- REQUESTS`, default 20,000; 50 as a smoke run
//! under `cargo test`). Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::time::{Duration, Instant};

use common::pipeline::{self, Figures};
use common::{drop_consumer, Broker, SimWorld};
use langsmith_sim::faults::{Class, FaultSpec};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::{json, Value};
use uuid::Uuid;

fn main() {
    let requests = common::size(20_000, 50);
    common::runtime().block_on(bench(requests));
}

async fn bench(requests: usize) {
    let latency_ms: u64 = std::env::var("BENCH_LATENCY_MS").map_or(50, |v| v.parse().expect("a whole number"));
    let broker = Broker::start(None);
    let sim = SimWorld::start(50, false);
    for class in Class::ALL {
        let spec = FaultSpec {
            latency_ms,
            ..FaultSpec::default()
        };
        sim.sim.faults().set(class, spec);
    }
    let topics = common::topics(&broker.bootstrap).await;
    let hand_topic = "bench.hand-requests";
    erasure_worker::kafka::create_topics(&broker.bootstrap, &[hand_topic], common::PARTITIONS)
        .await
        .unwrap();
    let producer = common::producer(&broker.bootstrap);
    let backlog: Vec<_> = (0..2 * requests).map(|i| pipeline::request(&sim, i)).collect();
    let (for_hand, for_worker) = backlog.split_at(requests);
    common::publish(&producer, hand_topic, for_hand.iter().cloned()).await;
    common::publish(&producer, &topics[0], for_worker.iter().cloned()).await;
    println!("{requests} requests of 1–3 trace ids over 50 projects each; every call answered after {latency_ms} ms");

    let hand = hand(&broker, &sim, hand_topic, requests).await;
    print("hand pipeline", &hand);
    let worker = pipeline::worker(&broker, &sim, &topics, requests).await;
    print("erasure-worker", &worker);
    let ratio = |h: f64, w: f64| h / w.max(1e-9);
    let share = |w: u64, h: u64| w as f64 / h.max(1) as f64;
    println!(
        "the worker against the hand pipeline: intake {:.1}× as fast with {:.4} of the delete calls; \
         verification {:.1}× as fast with {:.4} of the calls; end to end {:.1}× as fast with {:.4} of the calls",
        ratio(hand.intake_secs, worker.intake_secs),
        share(worker.delete_calls, hand.delete_calls),
        ratio(hand.verify_secs, worker.verify_secs),
        share(worker.verify_calls, hand.verify_calls),
        ratio(hand.total_secs(), worker.total_secs()),
        share(worker.total_calls(), hand.total_calls()),
    );
}

fn print(who: &str, f: &Figures) {
    println!(
        "{who}: intake {:.1} s, {} calls ({} deletes); verification {:.1} s, {} calls; end to end {:.1} s, {} calls",
        f.intake_secs,
        f.intake_calls,
        f.delete_calls,
        f.verify_secs,
        f.verify_calls,
        f.total_secs(),
        f.total_calls()
    );
}

/// The hand pipeline through `requests` requests on `topic`, one at a time.
async fn hand(broker: &Broker, sim: &SimWorld, topic: &str, requests: usize) -> Figures {
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: Value| {
        let request = http.post(format!("{}{path}", sim.url)).header("x-api-key", &sim.key);
        async move {
            let answer = request.json(&body).send().await.unwrap();
            assert!(answer.status().is_success(), "{path}: {}", answer.status());
            answer.json::<Value>().await.unwrap_or_default()
        }
    };
    let consumer: StreamConsumer = erasure_worker::kafka::client_config(&broker.bootstrap)
        .set("group.id", "hand")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut f = Figures::default();
    let deletes_before = sim.sim.counters().delete_calls_accepted;
    let calls_before = pipeline::calls(sim);
    let started = Instant::now();
    let mut recorded: Vec<(Uuid, Vec<Uuid>)> = Vec::with_capacity(requests);
    while recorded.len() < requests {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("the backlog is there")
            .unwrap();
        let event: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let target = &event["data"]["targets"][0];
        let session: Uuid = serde_json::from_value(target["session_id"].clone()).unwrap();
        let ids: Vec<Uuid> = serde_json::from_value(target["trace_ids"].clone()).unwrap();
        for chunk in ids.chunks(1000) {
            post(
                "/api/v1/runs/delete",
                json!({"session_id": session, "trace_ids": chunk}),
            )
            .await;
        }
        recorded.push((session, ids));
        consumer.commit_message(&m, CommitMode::Sync).unwrap();
    }
    f.intake_secs = started.elapsed().as_secs_f64();
    drop_consumer(consumer).await;
    f.intake_calls = pipeline::calls(sim) - calls_before;
    f.delete_calls = sim.sim.counters().delete_calls_accepted - deletes_before;
    f.ids = recorded.iter().map(|(_, ids)| ids.len()).sum();
    let applied = sim.sim.run_window().applied_traces;
    assert_eq!(applied as usize, f.ids, "the deletion job applies every requested id");

    let calls_before = pipeline::calls(sim);
    let started = Instant::now();
    for (session, ids) in &recorded {
        let body = json!({"session": [session], "id": ids, "select": ["id"], "limit": 100});
        let page = post("/api/v1/runs/query", body).await;
        assert_eq!(page["runs"], json!([]), "every trace is gone");
    }
    f.verify_secs = started.elapsed().as_secs_f64();
    f.verify_calls = pipeline::calls(sim) - calls_before;
    f
}
