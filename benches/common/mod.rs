//! What the benchmark programs share beyond the test kit (`testkit/`: the broker, the worker
//! process): a simulator workspace, the worker's topics and config, the release worker binary, and
//! /proc readings.

#![allow(dead_code)] // each benchmark uses its own subset

use std::process::Command;
use std::sync::Arc;

#[allow(unused_imports)] // each benchmark uses its own subset
pub use erasure_testkit::{drop_consumer, Broker, Worker};
use erasure_worker::kafka::{client_config, create_topics};
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde_json::json;
use uuid::Uuid;

pub mod pipeline;

pub const PARTITIONS: i32 = 4;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and then a benchmark does a
/// smoke run at a small size, so CI proves the program works without spending minutes on it.
pub fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The first numeric argument, or `full`/`smoke` by mode.
pub fn size(full_size: usize, smoke: usize) -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if full() { full_size } else { smoke })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A simulator on its own thread with one workspace of `sessions` projects.
pub struct SimWorld {
    pub sim: Arc<Sim>,
    pub url: String,
    pub ws: Uuid,
    pub sessions: Vec<Uuid>,
    pub key: String,
}

impl SimWorld {
    /// `documented_limits: false` turns every rate limit off: the benchmark then measures the worker.
    pub fn start(sessions: usize, documented_limits: bool) -> SimWorld {
        let sim = Sim::new(1);
        if !documented_limits {
            sim.clear_faults();
        }
        let key = "lsv2_pt_bench".to_string();
        let ws = sim
            .state()
            .create_workspace(serde_json::from_value(json!({"api_keys": [key]})).unwrap())
            .expect("a new key");
        let sessions = (0..sessions)
            .map(|i| {
                sim.state()
                    .add_session(ws, serde_json::from_value(json!({"name": format!("p{i}")})).unwrap())
                    .unwrap()
            })
            .collect();
        let url = format!("http://{}", sim.clone().spawn_on_thread().unwrap());
        SimWorld {
            sim,
            url,
            ws,
            sessions,
            key,
        }
    }
}

/// The worker's eight topics, `bench.requests` first.
pub async fn topics(bootstrap: &str) -> Vec<String> {
    topics_of(bootstrap, PARTITIONS).await
}

/// The worker's eight topics, of `partitions` partitions each.
pub async fn topics_of(bootstrap: &str, partitions: i32) -> Vec<String> {
    let topics: Vec<String> = erasure_testkit::TOPICS.iter().map(|t| format!("bench.{t}")).collect();
    create_topics(
        bootstrap,
        &topics.iter().map(String::as_str).collect::<Vec<_>>(),
        partitions,
    )
    .await
    .unwrap();
    topics
}

/// Writes the worker's config (`extra` TOML tables after the common ones) and starts the release
/// binary with `role`; its log goes to stderr at BENCH_WORKER_LOG (default warn).
pub fn spawn_worker(broker: &Broker, sim: &SimWorld, topics: &[String], role: &str, extra: &str) -> Worker {
    spawn_worker_env(broker, sim, topics, role, extra, &[])
}

/// [`spawn_worker`] with `env` set too (`ERASURE__…` overrides of the config).
pub fn spawn_worker_env(
    broker: &Broker,
    sim: &SimWorld,
    topics: &[String],
    role: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> Worker {
    let key_file = broker.dir.join("key");
    std::fs::write(&key_file, &sim.key).unwrap();
    let fetch_wait = fetch_wait_ms();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{}\"\nintake_group = \"bench-intake\"\nverifier_group = \"bench-verifier\"\n\
         [kafka.properties]\n\"fetch.wait.max.ms\" = \"{fetch_wait}\"\n[topics]\nrequests = \"{}\"\ndlq = \"{}\"\ndeletion_requested = \"{}\"\n\
         recheck = \"{}\"\ndeletion_verified = \"{}\"\ndeletion_failed = \"{}\"\nexamples = \"{}\"\nresolutions = \"{}\"\nprogress = \"{}\"\n[workspaces.main]\napi_url = \"{}\"\napi_key_file = \"{}\"\n{extra}",
        broker.bootstrap,
        topics[0],
        topics[1],
        topics[2],
        topics[3],
        topics[4],
        topics[5],
        topics[6],
        topics[7],
        topics[8],
        sim.url,
        key_file.display()
    );
    // A file of its own per worker: rewriting one shared file while another replica starts let that
    // replica read it half-written (seen in scaleout: "missing field `bootstrap`").
    static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let config_file = broker.dir.join(format!("{role}-{n}.toml"));
    std::fs::write(&config_file, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_erasure-worker"))
        .args(["run", "--role", role, "--config"])
        .arg(&config_file)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    Worker(child)
}

/// Tansu answers every fetch after sleeping half of `fetch.wait.max.ms`, even when it has data, so
/// librdkafka's default (500 ms) caps a consumer there. Raw consumers and the worker use the same
/// value: BENCH_FETCH_WAIT_MS, default librdkafka's 500.
pub fn fetch_wait_ms() -> String {
    std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "500".into())
}

/// An erasure request naming `ids` in `session`, as the CloudEvents payload.
pub fn request(i: usize, session: Uuid, ids: &[Uuid]) -> Vec<u8> {
    let data = json!({"request_id": format!("b-{i}"), "targets": [{"session_id": session, "trace_ids": ids}]});
    let ev = json!({"specversion": "1.0", "id": format!("e{i}"), "source": "urn:bench", "type": "erasure.requested.v1", "data": data});
    serde_json::to_vec(&ev).unwrap()
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    client_config(bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

/// Queues request `i` (keyed `b-{i}`) naming `ids` in `session`, waiting while the local queue is
/// full; returns its delivery.
pub async fn send(producer: &FutureProducer, topic: &str, i: usize, session: Uuid, ids: &[Uuid]) -> DeliveryFuture {
    let payload = request(i, session, ids);
    let key = format!("b-{i}");
    loop {
        match producer.send_result(FutureRecord::to(topic).key(&key).payload(&payload)) {
            Ok(d) => return d,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
}

/// Publishes the requests and waits for every acknowledgement.
pub async fn publish(producer: &FutureProducer, topic: &str, requests: impl Iterator<Item = (usize, Uuid, Vec<Uuid>)>) {
    let mut pending = Vec::new();
    for (i, session, ids) in requests {
        pending.push(send(producer, topic, i, session, &ids).await);
    }
    for d in pending {
        d.await.unwrap().unwrap();
    }
}

/// A reader of the worker's outputs that polls briskly, so it is never what a benchmark measures.
pub fn reader(bootstrap: &str, topics: &[&str]) -> StreamConsumer {
    let reader: StreamConsumer = client_config(bootstrap)
        .set("group.id", "bench-check")
        .set("fetch.wait.max.ms", "10")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(topics).unwrap();
    reader
}
