//! Simulator benchmark (a program that prints figures, not a timed test):
//! - the time and memory to load one million runs;
//! - requests per second with the simulator confined to one core (a current-thread runtime on its
//!   own thread), driven by a client on another thread over loopback.
//!
//! Run: `cargo bench -p langsmith-sim --bench sim` (optional: `-- RUNS SECONDS`; a smoke run of
//! 10,000 runs and 1 s under `cargo test`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use langsmith_sim::store::{Generate, MetadataTemplate, NewSession, NewWorkspace};
use langsmith_sim::Sim;
use serde_json::json;
use uuid::Uuid;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this is a small smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let runs: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if bench { 1_000_000 } else { 10_000 });
    let seconds: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if bench { 5 } else { 1 });

    let sim = Sim::new(1);
    sim.clear_faults();
    let key = "lsv2_pt_bench".to_string();
    let new = NewWorkspace {
        id: None,
        name: "bench".into(),
        org_id: None,
        api_keys: vec![key.clone()],
        org_scoped_keys: vec![],
    };
    let ws = sim.state().create_workspace(new).expect("a new key");
    let session = sim
        .state()
        .add_session(
            ws,
            NewSession {
                id: None,
                name: "bench".into(),
                start_time: None,
                description: None,
            },
        )
        .unwrap();

    let before = rss_mib();
    let t = Instant::now();
    let generate = Generate {
        session_id: session,
        traces: runs,
        runs_per_trace: 1,
        start_time: None,
        spread_seconds: 3600,
        metadata: vec![MetadataTemplate {
            key: "user_id".into(),
            prefix: "user-".into(),
            distinct: None,
            children_only: false,
        }],
        return_ids: true,
    };
    let (made, trace_ids) = sim.state().generate(ws, generate).unwrap();
    let load = t.elapsed();
    println!(
        "load: {made} runs in {:.2} s, RSS +{:.0} MiB ({:.0} MiB total)",
        load.as_secs_f64(),
        rss_mib() - before,
        rss_mib()
    );

    let base = format!("http://{}", sim.clone().spawn_on_thread().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let trace_ids = Arc::new(trace_ids);
    for (name, kind) in [
        ("POST /runs/delete (100 ids)", 0),
        ("POST /v2/traces/query (10 ids)", 1),
        ("GET /sessions?name=", 2),
        (
            "POST /v2/runs/query (a selector: one user's pair, any run of a trace)",
            3,
        ),
    ] {
        let rate = rt.block_on(drive(
            &base,
            &key,
            session,
            trace_ids.clone(),
            kind,
            Duration::from_secs(seconds),
        ));
        println!("{name}: {rate:.0} requests/s (simulator on one core, 32 connections)");
    }
}

async fn drive(base: &str, key: &str, session: Uuid, ids: Arc<Vec<Uuid>>, kind: u8, run_for: Duration) -> f64 {
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let deadline = Instant::now() + run_for;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..32usize {
        let (http, base, key, ids) = (http.clone(), base.to_owned(), key.to_owned(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut i = worker * 7919;
            while Instant::now() < deadline {
                i = (i + 1013) % ids.len().saturating_sub(100).max(1);
                let req = match kind {
                    0 => http.post(format!("{base}/api/v1/runs/delete")).json(&json!({"session_id": session, "trace_ids": &ids[i..i + 100]})),
                    1 => http.post(format!("{base}/v2/traces/query")).json(&json!({"project_id": session, "trace_ids": &ids[i..i + 10], "min_start_time": "2000-01-01T00:00:00Z"})),
                    2 => http.get(format!("{base}/api/v1/sessions?name=bench&limit=1")),
                    _ => http.post(format!("{base}/v2/runs/query")).json(&json!({"project_ids": [session], "is_root": true,
                        "tree_filter": format!(r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "user-{i}"))"#),
                        "min_start_time": "2000-01-01T00:00:00Z", "page_size": 100})),
                };
                let resp = req.header("x-api-key", &key).send().await.expect("request");
                assert!(resp.status().is_success(), "{}", resp.status());
                resp.bytes().await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}
