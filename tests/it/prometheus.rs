//! A real Prometheus server on loopback scrapes the worker; the values are checked through its query
//! API, and `promtool check metrics` accepts the worker's output.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use langsmith_sim::window::Schedule;
use serde_json::Value;

use crate::support::{private_simulator, unique};
use crate::verify::{all_terminal, http_addr, metrics_text, requests};
use crate::world::World;

/// Prometheus, stopped when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(target: &str) -> Prometheus {
    let dir = std::env::temp_dir().join(unique("prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: erasure-worker\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting prometheus ({e}): run scripts/prometheus-install (Debian package prometheus)")
        });
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// The value of `query` in Prometheus, once it has one.
async fn query(http: &reqwest::Client, prom: &Prometheus, query: &str) -> Option<f64> {
    let r = http
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", query)])
        .send()
        .await
        .ok()?;
    let body: Value = r.json().await.ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_worker_and_promtool_accepts_its_metrics() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 2).await;
    let (data, want) = requests(&world, 30, 3);
    let extra = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n";
    let mut worker = world.spawn_worker(extra, "all", "all");
    let log_path = world.log_path("all");
    crate::support::wait_for("the worker's HTTP address", Duration::from_secs(30), || {
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("serving /metrics"))
    })
    .await;
    let addr = http_addr(&std::fs::read_to_string(&log_path).unwrap());
    let prom = start_prometheus(&addr);
    world.publish_many(&data).await;
    world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;

    let http = reqwest::Client::new();
    let ids: usize = want.values().map(|ids| ids.len()).sum();
    let owned = |t: &str| format!("erasure_partitions_owned{{topic=\"{}\"}}", world.topic(t));
    let size = |t: &str| format!("erasure_topic_partitions{{topic=\"{}\"}}", world.topic(t));
    let expect = [
        (owned("requests"), 2.0),
        (size("requests"), 2.0),
        (owned("recheck"), 2.0),
        (size("recheck"), 2.0),
        (
            "erasure_events_consumed_total{outcome=\"valid\"}".into(),
            want.len() as f64,
        ),
        ("erasure_traces_requested_total".into(), ids as f64),
        (
            "erasure_verification_checks_total{outcome=\"verified\"}".into(),
            want.len() as f64,
        ),
        ("erasure_broker_up".into(), 1.0),
        ("erasure_workspace_broken{workspace=\"main\"}".into(), 0.0),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (q, value) in expect {
        loop {
            let got = query(&http, &prom, &q).await;
            if got == Some(value) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{q}: Prometheus has {got:?}, want {value}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let delete_calls = query(
        &http,
        &prom,
        "sum(erasure_langsmith_requests_total{endpoint=\"delete\",status=\"2xx\"})",
    )
    .await;
    assert!(
        delete_calls.is_some_and(|n| n >= 1.0),
        "delete calls counted: {delete_calls:?}"
    );

    let body = metrics_text(&addr).await;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/prometheus-install)");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    worker.terminate();
    drop(prom);
}
