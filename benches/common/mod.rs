//! What the benchmark programs share: a Tansu broker, a simulator workspace, the worker's topics
//! and config, the release worker binary, and /proc readings.

#![allow(dead_code)] // each benchmark uses its own subset

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;

use erasure_worker::kafka::{client_config, create_topics};
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde_json::json;
use uuid::Uuid;

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

pub struct Broker {
    pub bootstrap: String,
    pub dir: PathBuf,
    pub pid: u32,
}

impl Broker {
    pub fn start() -> Broker {
        let dir = std::env::temp_dir().join(format!("erasure-bench-{}", std::process::id()));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .env("KAFKA_BROKER_NO_INSTALL", "1")
            .env("KAFKA_BROKER_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "broker (install it with scripts/kafka-broker install): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = std::fs::read_to_string(dir.join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Broker {
            bootstrap: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            dir,
            pid,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker")
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

/// The worker's six topics, `bench.requests` first.
pub async fn topics(bootstrap: &str) -> Vec<String> {
    let topics: Vec<String> = ["requests", "dlq", "requested", "recheck", "verified", "failed"]
        .iter()
        .map(|t| format!("bench.{t}"))
        .collect();
    create_topics(
        bootstrap,
        &topics.iter().map(String::as_str).collect::<Vec<_>>(),
        PARTITIONS,
    )
    .await
    .unwrap();
    topics
}

/// Writes the worker's config (`extra` TOML tables after the common ones) and starts the release
/// binary with `role`; its log goes to stderr at BENCH_WORKER_LOG (default warn).
pub fn spawn_worker(broker: &Broker, sim: &SimWorld, topics: &[String], role: &str, extra: &str) -> Worker {
    let key_file = broker.dir.join("key");
    std::fs::write(&key_file, &sim.key).unwrap();
    let fetch_wait = fetch_wait_ms();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{}\"\nintake_group = \"bench-intake\"\nverifier_group = \"bench-verifier\"\n\
         [kafka.properties]\n\"fetch.wait.max.ms\" = \"{fetch_wait}\"\n[topics]\nrequests = \"{}\"\ndlq = \"{}\"\ndeletion_requested = \"{}\"\n\
         recheck = \"{}\"\ndeletion_verified = \"{}\"\ndeletion_failed = \"{}\"\n[workspaces.main]\napi_url = \"{}\"\napi_key_file = \"{}\"\n{extra}",
        broker.bootstrap,
        topics[0],
        topics[1],
        topics[2],
        topics[3],
        topics[4],
        topics[5],
        sim.url,
        key_file.display()
    );
    let config_file = broker.dir.join(format!("{role}.toml"));
    std::fs::write(&config_file, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_erasure-worker"))
        .args(["run", "--role", role, "--config"])
        .arg(&config_file)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .spawn()
        .unwrap();
    Worker(child)
}

/// The worker process; killed if the benchmark ends without stopping it (a failed assertion).
pub struct Worker(Child);

impl Worker {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Stops the worker with SIGTERM and waits for it.
    pub fn stop(mut self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
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

pub async fn drop_consumer<C: Send + 'static>(c: C) {
    tokio::task::spawn_blocking(move || drop(c)).await.unwrap();
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
