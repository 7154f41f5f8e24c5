//! How long a healthy workspace's requests take while another workspace is stuck (a program that
//! prints figures, not a timed test). Two workspaces, `main` and `b`; requests alternate between
//! them at a steady rate, each naming 1 to 3 trace ids of one project. Three runs, each with a fresh
//! broker: `b` healthy, `b`'s key refused (401), and `b` unreachable (its `api_url` a closed port).
//! Prints, per run, the time from publishing each `main` request to its `deletion-requested` event
//! (median, 99th percentile, worst; `intake.linger`, 2 s, is most of it), and the ratio to the run
//! where `b` is healthy. The clock starts after a first request was answered.
//!
//! `intake.max_in_flight_ids` is 10,000 (BENCH_MAX_IN_FLIGHT), so that the stuck workspace reaches
//! its share (half) within the run: past it its events are set aside instead of pausing the input.
//! Run: `scripts/bench isolation` (`-- N` requests, default 12,000 at 200/s; a smoke run of 200
//! at 100/s under `cargo test`). Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Broker, SimWorld};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use serde_json::json;
use uuid::Uuid;

fn main() {
    let n = common::size(12_000, 200);
    let rate = if common::full() { 200.0 } else { 100.0 };
    let rt = common::runtime();
    let mut baseline = None;
    for stuck in [Stuck::No, Stuck::Refused, Stuck::Unreachable] {
        let (p50, p99, worst) = rt.block_on(run(n, rate, stuck));
        let base = *baseline.get_or_insert(p99);
        println!(
            "isolation: `b` {}: `main`'s {} requests requested after p50 {p50:.2} s, p99 {p99:.2} s, worst {worst:.2} s \
             (p99 {:.2} × the run with `b` healthy)",
            stuck.name(),
            n / 2,
            p99 / base
        );
    }
}

#[derive(Clone, Copy)]
enum Stuck {
    No,
    Refused,
    Unreachable,
}

impl Stuck {
    fn name(self) -> &'static str {
        match self {
            Stuck::No => "healthy",
            Stuck::Refused => "refused (401)",
            Stuck::Unreachable => "unreachable",
        }
    }
}

/// One run: returns `main`'s (median, 99th percentile, worst) seconds to `deletion-requested`.
async fn run(n: usize, rate: f64, stuck: Stuck) -> (f64, f64, f64) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(4, false);
    let (b_session, extra) = workspace_b(&broker, &sim, stuck);
    let topics = common::topics(&broker.bootstrap).await;
    let reader = common::reader(&broker.bootstrap, &[&topics[2]]);
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "intake", &extra);
    let producer = common::producer(&broker.bootstrap);
    // The clock starts once the worker has joined its group and answered a first request.
    let warm_up = send(&producer, &topics[0], "warm-up", "main", sim.sessions[0], 1);
    warm_up.await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(120), reader.recv())
        .await
        .expect("the worker answered no request within 120 s")
        .unwrap();
    let sent: Mutex<HashMap<String, Instant>> = Mutex::default();
    let start = Instant::now();
    let publish = async {
        let mut pending = Vec::new();
        for i in 0..n {
            tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / rate)).into()).await;
            let (workspace, session) = if i % 2 == 0 {
                ("main", sim.sessions[i % 4])
            } else {
                ("b", b_session)
            };
            let id = format!("r-{i}");
            if workspace == "main" {
                sent.lock().unwrap().insert(id.clone(), Instant::now());
            }
            pending.push(send(&producer, &topics[0], &id, workspace, session, 1 + i % 3));
        }
        for d in pending {
            d.await.unwrap().unwrap();
        }
    };
    let read = async {
        let mut latencies = Vec::with_capacity(n / 2);
        while latencies.len() < n / 2 {
            let m = tokio::time::timeout(Duration::from_secs(300), reader.recv())
                .await
                .unwrap_or_else(|_| panic!("`main`'s requests stalled: {} of {} requested", latencies.len(), n / 2))
                .unwrap();
            let request = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            if let Some(at) = sent.lock().unwrap().remove(&request) {
                latencies.push(at.elapsed().as_secs_f64());
            }
        }
        latencies
    };
    let ((), mut latencies) = tokio::join!(publish, read);
    reader.unsubscribe();
    common::drop_consumer(reader).await;
    worker.terminate();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), at(1.0))
}

/// Workspace `b` in the simulator with one project, and the worker's config for it, stuck as
/// asked: returns the project and the config's extra tables.
fn workspace_b(broker: &Broker, sim: &SimWorld, stuck: Stuck) -> (Uuid, String) {
    let b_key = "lsv2_pt_bench_b";
    let new = serde_json::from_value(json!({"api_keys": [b_key]})).unwrap();
    let b = sim.sim.state().create_workspace(new).unwrap();
    let project = serde_json::from_value(json!({"name": "b0"})).unwrap();
    let b_session = sim.sim.state().add_session(b, project).unwrap();
    let key_file = broker.dir.join("b.key");
    let worker_key = match stuck {
        Stuck::Refused => "lsv2_pt_not_bound",
        _ => b_key,
    };
    std::fs::write(&key_file, worker_key).unwrap();
    let b_url = match stuck {
        // Nothing listens on port 9 of loopback: every call is refused at connect.
        Stuck::Unreachable => "http://127.0.0.1:9".to_owned(),
        _ => sim.url.clone(),
    };
    let max = std::env::var("BENCH_MAX_IN_FLIGHT").unwrap_or_else(|_| "10000".into());
    let extra = format!(
        "[intake]\nmax_in_flight_ids = {max}\n[limits]\nscope = \"replica\"\ndelete_per_second = 1000\nquery_v2_per_second = 2000\n\
         [retry]\nmax = \"2s\"\n[workspaces.b]\napi_url = \"{b_url}\"\napi_key_file = \"{}\"\n",
        key_file.display()
    );
    (b_session, extra)
}

/// Queues request `id` of `workspace`, naming `ids` fresh trace ids of `session`; returns its delivery.
fn send(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    id: &str,
    workspace: &str,
    session: Uuid,
    ids: usize,
) -> rdkafka::producer::DeliveryFuture {
    let ids: Vec<Uuid> = (0..ids).map(|_| Uuid::new_v4()).collect();
    let data = json!({"request_id": id, "workspace": workspace,
                      "targets": [{"session_id": session, "trace_ids": ids}]});
    let ev = json!({"specversion": "1.0", "id": id, "source": "urn:bench",
                    "type": "erasure.requested.v1", "data": data});
    let payload = serde_json::to_vec(&ev).unwrap();
    let record = FutureRecord::to(topic).key(id).payload(&payload);
    producer
        .send_result(record)
        .map_err(|(e, _)| e)
        .expect("the producer's queue has room")
}
