//! Intake benchmark (a program that prints figures, not a timed test), against Tansu and the simulator:
//! - raw consume rate of the broker for the backlog (a plain consumer, same run);
//! - intake throughput (events/s, trace ids/s) of the release worker binary draining the backlog;
//! - the worker's peak RSS with that backlog.
//!
//! Run: `cargo bench --bench intake` (optional: `-- EVENTS`, default 1,000,000; 5,000 as a smoke run
//! under `cargo test`). Needs Tansu
//! (`scripts/kafka-broker install`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use erasure_worker::kafka::{client_config, create_topics};
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use uuid::Uuid;

const PARTITIONS: i32 = 4;
const SESSIONS: usize = 50;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and then this is a smoke
    // run at a small size, so CI proves the program works without spending minutes on it.
    let full = std::env::args().any(|a| a == "--bench");
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(events));
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn bench(events: usize) {
    // Tansu answers every fetch after sleeping half of `fetch.wait.max.ms`, even when it has data, so
    // librdkafka's default (500 ms) caps a consumer there. The raw consumer and the worker use the same
    // value: BENCH_FETCH_WAIT_MS, default librdkafka's 500.
    let fetch_wait = std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "500".into());
    let dir = std::env::temp_dir().join(format!("erasure-bench-{}", std::process::id()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker");
    let out = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .env("KAFKA_BROKER_NO_INSTALL", "1")
        .env("KAFKA_BROKER_WATCH_PID", std::process::id().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "broker: {}", String::from_utf8_lossy(&out.stderr));
    let bootstrap = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    // The simulator on its own thread, without rate limits: this measures the worker.
    let sim = Sim::new(1);
    sim.clear_faults();
    let key = "lsv2_pt_bench".to_string();
    let ws = sim
        .state()
        .create_workspace(serde_json::from_value(json!({"api_keys": [key]})).unwrap());
    let sessions: Vec<Uuid> = (0..SESSIONS)
        .map(|i| {
            sim.state()
                .add_session(ws, serde_json::from_value(json!({"name": format!("p{i}")})).unwrap())
                .unwrap()
        })
        .collect();
    let sim_url = format!("http://{}", sim.clone().spawn_on_thread().unwrap());

    let topics: Vec<String> = ["requests", "dlq", "requested", "recheck", "verified", "failed"]
        .iter()
        .map(|t| format!("bench.{t}"))
        .collect();
    create_topics(
        &bootstrap,
        &topics.iter().map(String::as_str).collect::<Vec<_>>(),
        PARTITIONS,
    )
    .await
    .unwrap();

    // The backlog: explicit requests of 1 to 3 trace ids in one of 50 projects, batched as a busy
    // producer would.
    let producer: FutureProducer = client_config(&bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let t = Instant::now();
    let mut ids_total = 0usize;
    let mut per_session = vec![0usize; SESSIONS];
    let mut pending = Vec::new();
    // BENCH_MIX=zipf: projects drawn with Zipf weights (exponent 1.1) instead of round robin.
    let zipf = std::env::var("BENCH_MIX").is_ok_and(|m| m == "zipf");
    let weights: Vec<f64> = (1..=SESSIONS).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut pick = |i: usize| {
        if !zipf {
            return i % SESSIONS;
        }
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut x = (rng >> 11) as f64 / (1u64 << 53) as f64 * total;
        weights
            .iter()
            .position(|w| {
                x -= w;
                x < 0.0
            })
            .unwrap_or(SESSIONS - 1)
    };
    for i in 0..events {
        let s = pick(i);
        let n = 1 + i % 3;
        ids_total += n;
        per_session[s] += n;
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let data = json!({"request_id": format!("b-{i}"), "targets": [{"session_id": sessions[s], "trace_ids": ids}]});
        let ev = json!({"specversion": "1.0", "id": format!("e{i}"), "source": "urn:bench", "type": "erasure.requested.v1", "data": data});
        let payload = serde_json::to_vec(&ev).unwrap();
        let key = format!("b-{i}");
        loop {
            match producer.send_result(FutureRecord::to(&topics[0]).key(&key).payload(&payload)) {
                Ok(d) => {
                    pending.push(d);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        if pending.len() >= 50_000 {
            for d in pending.drain(..) {
                d.await.unwrap().unwrap();
            }
        }
    }
    for d in pending.drain(..) {
        d.await.unwrap().unwrap();
    }
    println!(
        "backlog: {events} events ({ids_total} trace ids, {} mix over {SESSIONS} projects) produced in {:.1} s",
        if zipf { "Zipf 1.1" } else { "uniform" },
        t.elapsed().as_secs_f64()
    );

    // Raw consume rate of the same broker and topic.
    let raw: StreamConsumer = client_config(&bootstrap)
        .set("group.id", "bench-raw")
        .set("fetch.wait.max.ms", &fetch_wait)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    raw.subscribe(&[&topics[0]]).unwrap();
    let mut got = 0;
    let mut start = None;
    while got < events {
        raw.recv().await.unwrap();
        start.get_or_insert_with(Instant::now);
        got += 1;
    }
    let raw_rate = events as f64 / start.unwrap().elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || drop(raw)).await.unwrap();
    println!("raw consume: {raw_rate:.0} events/s");

    // The release worker binary drains the backlog.
    let key_file = dir.join("key");
    std::fs::write(&key_file, &key).unwrap();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{bootstrap}\"\nintake_group = \"bench-intake\"\n[kafka.properties]\n\"fetch.wait.max.ms\" = \"{fetch_wait}\"\n[topics]\nrequests = \"{}\"\ndlq = \"{}\"\ndeletion_requested = \"{}\"\n\
         recheck = \"{}\"\ndeletion_verified = \"{}\"\ndeletion_failed = \"{}\"\n[limits]\ndelete_per_second = 1000\n[intake]\nmax_in_flight_ids = {}\n\
         [workspaces.main]\napi_url = \"{sim_url}\"\napi_key_file = \"{}\"\n",
        topics[0],
        topics[1],
        topics[2],
        topics[3],
        topics[4],
        topics[5],
        std::env::var("BENCH_MAX_IN_FLIGHT").unwrap_or_else(|_| "100000".into()),
        key_file.display()
    );
    let config_file = dir.join("worker.toml");
    std::fs::write(&config_file, config).unwrap();
    // Every request yields one deletion-requested event here (one project, at most 3 ids): the
    // worker is done with the backlog when the last one arrives.
    let reader: StreamConsumer = client_config(&bootstrap)
        .set("group.id", "bench-check")
        .set("fetch.wait.max.ms", "10")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&topics[2]]).unwrap();
    let broker_pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let broker_cpu_before = cpu_secs(broker_pid);
    let t = Instant::now();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_erasure-worker"))
        .args(["run", "--role", "intake", "--config"])
        .arg(&config_file)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .spawn()
        .unwrap();
    let mut seen = std::collections::HashSet::with_capacity(events);
    let mut peak_rss = 0;
    let mut sample = tokio::time::interval(Duration::from_millis(100));
    while seen.len() < events {
        tokio::select! {
            m = reader.recv() => {
                use rdkafka::Message;
                seen.insert(m.unwrap().key().map(<[u8]>::to_vec));
            }
            _ = sample.tick() => {
                let rss = status_kib(worker.id(), "VmRSS:");
                if std::env::var_os("BENCH_PROGRESS").is_some() {
                    eprintln!("{:>5.1} s: {} events done, worker RSS {} MiB", t.elapsed().as_secs_f64(), seen.len(), rss / 1024);
                }
                peak_rss = peak_rss.max(rss);
                assert!(worker.try_wait().unwrap().is_none(), "the worker exited early");
            }
        }
    }
    let elapsed = t.elapsed().as_secs_f64();
    let hwm = status_kib(worker.id(), "VmHWM:");
    let worker_cpu = cpu_secs(worker.id());
    let broker_cpu = cpu_secs(broker_pid) - broker_cpu_before;
    tokio::task::spawn_blocking(move || drop(reader)).await.unwrap();
    // And every input offset gets committed (auto-commit runs every 5 s).
    let probe: StreamConsumer = client_config(&bootstrap)
        .set("group.id", "bench-intake")
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(&topics[0], p);
        }
        let done: i64 = probe
            .committed_offsets(tpl, Duration::from_secs(5))
            .map(|c| {
                c.elements()
                    .iter()
                    .map(|e| {
                        if let rdkafka::Offset::Offset(o) = e.offset() {
                            o
                        } else {
                            0
                        }
                    })
                    .sum()
            })
            .unwrap_or(0);
        if done as usize >= events {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {events} offsets committed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(worker.id().to_string())
        .status()
        .unwrap();
    worker.wait().unwrap();
    tokio::task::spawn_blocking(move || drop(probe)).await.unwrap();
    let c = sim.counters().clone();
    println!(
        "intake: {events} events in {elapsed:.1} s = {:.0} events/s, {:.0} trace ids/s ({:.2} of the raw consume rate)",
        events as f64 / elapsed,
        ids_total as f64 / elapsed,
        events as f64 / elapsed / raw_rate
    );
    let minimum: usize = per_session.iter().map(|n| n.div_ceil(1000)).sum();
    println!(
        "delete calls: {} for {} ids (max {} per call); minimum {minimum} ({:.3} of it)",
        c.delete_calls_accepted,
        c.delete_ids_total,
        c.delete_ids_max,
        c.delete_calls_accepted as f64 / minimum as f64
    );
    println!("CPU while draining: worker {worker_cpu:.1} s, broker {broker_cpu:.1} s (2 cores: {:.1} core-seconds available)", 2.0 * elapsed);
    println!(
        "worker peak RSS: {:.0} MiB (VmHWM), {:.0} MiB (highest sampled VmRSS)",
        hwm as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    let sent: std::collections::HashSet<Uuid> = sim.delete_calls(ws).into_iter().flat_map(|(_, ids)| ids).collect();
    println!(
        "distinct trace ids sent to the delete API: {} of {ids_total}",
        sent.len()
    );
    let _ = Command::new(&script).arg("stop").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
}
