//! The verifier against Tansu and the simulator, with fixed windows of seconds: verified only after
//! the simulator's deletion job ran, re-requests then `deletion-failed` for ids never deleted, a kill
//! while waiting, a wait longer than `max.poll.interval.ms`, and two replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use langsmith_sim::window::Schedule;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::intake::Lcg;
use crate::schemas::validator;
use crate::support::private_simulator;
use crate::world::{data_of, Out, World};

/// (request id, session, part) → the part's ids.
type Parts = BTreeMap<(String, Uuid, u64), BTreeSet<Uuid>>;

fn ids(d: &Value) -> BTreeSet<Uuid> {
    d["trace_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect()
}

fn part_key(d: &Value) -> (String, Uuid, u64) {
    (
        d["request_id"].as_str().unwrap().to_owned(),
        d["session_id"].as_str().unwrap().parse().unwrap(),
        d["part"].as_u64().unwrap(),
    )
}

/// `n` requests over `sessions`, each naming 1..=4 traces that exist in the simulator.
pub fn requests(world: &World, n: usize, sessions: usize) -> (Vec<Value>, BTreeMap<String, BTreeSet<Uuid>>) {
    let sessions = world.sessions(sessions);
    let mut rng = Lcg(5);
    let mut want = BTreeMap::new();
    let data = (0..n)
        .map(|i| {
            let session = sessions[rng.next(sessions.len() as u64) as usize];
            let gen = json!({"session_id": session, "traces": 1 + rng.next(4), "return_ids": true});
            let (_, ids) = world
                .sim
                .state()
                .generate(world.ws, serde_json::from_value(gen).unwrap())
                .unwrap();
            let id = format!("v-{i}");
            want.insert(id.clone(), ids.iter().copied().collect());
            json!({"request_id": id, "targets": [{"session_id": session, "trace_ids": ids}]})
        })
        .collect();
    (data, want)
}

/// Every request's ids are named by its terminal (verified or failed) events.
pub fn all_terminal(outs: &[Out], want: &BTreeMap<String, BTreeSet<Uuid>>) -> bool {
    let mut got: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    for d in data_of(outs, "verified").iter().chain(&data_of(outs, "failed")) {
        got.entry(d["request_id"].as_str().unwrap().to_owned())
            .or_default()
            .extend(ids(d));
    }
    want.iter()
        .all(|(r, ids)| got.get(r).is_some_and(|g| g.is_superset(ids)))
}

fn time(d: &Value, field: &str) -> DateTime<Utc> {
    d[field].as_str().unwrap().parse().unwrap()
}

fn v2_queries(world: &World) -> u64 {
    let c = world.sim.counters();
    c.calls_to(&langsmith_sim::counters::V2_TRACES_QUERY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_applied_in_the_window_are_verified_and_none_before_it() {
    let sim = private_simulator();
    let world = World::new(&sim, 2).await;
    let (data, want) = requests(&world, 300, 8);
    let config = world.config("[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"10s\"\n");
    let (stop_intake, intake) = world.start(config.clone());
    let (stop_verifier, verifier) = world.start_verifier(config);
    world.publish_many(&data).await;
    let requested = world
        .collect(Duration::from_secs(60), |o| data_of(o, "requested").len() >= want.len())
        .await;
    // Every delete is accepted; the simulator's job runs once, now. No check may pass before it.
    let window_ran = Utc::now();
    let applied = world.sim.run_window().applied_traces;
    let queries_before = v2_queries(&world);
    let outs = world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    let verified = data_of(&outs, "verified");
    let checked: Vec<DateTime<Utc>> = verified.iter().map(|d| time(d, "checked_at")).collect();
    let span = *checked.iter().max().unwrap() - *checked.iter().min().unwrap();
    let schema = validator("erasure.deletion.verified.v1");
    for d in &verified {
        assert!(schema.is_valid(d), "verified event valid against its schema: {d}");
        assert!(
            time(d, "checked_at") >= window_ran,
            "verified before the window ran: {d}"
        );
    }
    assert!(data_of(&outs, "failed").is_empty(), "nothing fails");
    assert!(data_of(&outs, "recheck").is_empty(), "no recheck in the happy path");
    let parts: Parts = data_of(&requested, "requested")
        .iter()
        .map(|d| (part_key(d), ids(d)))
        .collect();
    assert_eq!(verified.len(), parts.len(), "one verified event per part");
    assert_eq!(applied as usize, want.values().map(BTreeSet::len).sum::<usize>());
    let queries = v2_queries(&world) - queries_before;
    // A project's parts that fall due together share a query (`verify/batch.rs`): 300 parts over 8
    // projects fall due within a few seconds, at most one query per project per `check_linger` (1 s).
    assert!(
        queries as usize * 4 <= parts.len(),
        "{queries} queries for {} parts: the checks of a project's parts are not asked together",
        parts.len()
    );
    eprintln!(
        "{} parts verified with {queries} queries ({:.2} per part); {:.1} parts/s from the first check to \
         the last (query limit {} per second)",
        parts.len(),
        queries as f64 / parts.len() as f64,
        (parts.len() - 1) as f64 / (span.num_milliseconds().max(1) as f64 / 1000.0),
        erasure_worker::config::Limits::default().query_v2_per_second
    );
    stop_intake.send(()).unwrap();
    stop_verifier.send(()).unwrap();
    intake.await.unwrap().unwrap();
    verifier.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_never_deleted_are_re_requested_then_failed_by_name() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let (data, want) = requests(&world, 20, 2);
    // One id of every fourth request is never deleted by the simulator.
    let never: BTreeSet<Uuid> = want
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 0)
        .map(|(_, (_, ids))| *ids.iter().next().unwrap())
        .collect();
    world.sim.state().never_traces.extend(never.iter().copied());
    let config = world.config(
        "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n[verifier]\nmax_attempts = 3\n",
    );
    let (stop_intake, intake) = world.start(config.clone());
    let (stop_verifier, verifier) = world.start_verifier(config);
    world.publish_many(&data).await;
    let outs = world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    let failed = data_of(&outs, "failed");
    let schema = validator("erasure.deletion.failed.v1");
    let mut failed_ids = BTreeSet::new();
    for d in &failed {
        assert!(schema.is_valid(d), "failed event valid against its schema: {d}");
        assert_eq!(d["reason"], "still_present");
        assert_eq!(d["attempts"], 3);
        failed_ids.extend(ids(d));
    }
    assert_eq!(failed_ids, never, "deletion-failed names exactly the ids never deleted");
    let verified: BTreeSet<Uuid> = data_of(&outs, "verified").iter().flat_map(ids).collect();
    let all: BTreeSet<Uuid> = want.values().flatten().copied().collect();
    assert_eq!(verified, &all - &never, "every other id is verified");
    // The intake's delete, then one re-request per window before the last check.
    let mut sends: BTreeMap<Uuid, usize> = BTreeMap::new();
    for (_, ids) in world.sim.delete_calls(world.ws) {
        for id in ids {
            *sends.entry(id).or_default() += 1;
        }
    }
    for id in &never {
        assert_eq!(sends[id], 3, "{id}: deleted, then re-requested twice");
    }
    let rechecks = data_of(&outs, "recheck");
    assert_eq!(rechecks.len(), 2 * never.len(), "two rechecks per part with a stuck id");
    stop_intake.send(()).unwrap();
    stop_verifier.send(()).unwrap();
    intake.await.unwrap().unwrap();
    verifier.await.unwrap().unwrap();
}

/// The address the worker's log says it serves HTTP on (the log may hold ANSI colours).
pub fn http_addr(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .unwrap_or_else(|| panic!("no HTTP address in the log:\n{log}"));
    let mut pieces = line.split('\x1b');
    let mut plain = pieces.next().unwrap_or_default().to_owned();
    for p in pieces {
        plain.push_str(p.split_once('m').map_or(p, |(_, rest)| rest));
    }
    let at = plain.find("addr=").expect("addr field") + "addr=".len();
    plain[at..].split_whitespace().next().unwrap().to_owned()
}

/// The text a worker serves on `/metrics` at `addr` (host:port).
pub async fn metrics_text(addr: &str) -> String {
    let resp = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    resp.text().await.expect("metrics body")
}

/// `/readyz` answers 200 once librdkafka reported the broker up (its statistics come every 5 s).
async fn wait_for_ready(http: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready: {}",
            r.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_killed_while_waiting_restarts_and_verifies_everything() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 2).await;
    let (data, want) = requests(&world, 40, 3);
    // Short session and poll timeouts so the group drops the killed member quickly.
    let extra = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"8s\"\n\
                 [kafka.properties]\n\"max.poll.interval.ms\" = \"10000\"\n\"session.timeout.ms\" = \"6000\"\n";
    let (stop_intake, intake) = world.start(world.config(extra));
    let mut first = world.spawn_worker(extra, "verifier-1", "verifier");
    world.publish_many(&data).await;
    world
        .collect(Duration::from_secs(60), |o| data_of(o, "requested").len() >= want.len())
        .await;
    first.kill().expect("SIGKILL while every part waits");
    first.wait().unwrap();
    let mut second = world.spawn_worker(extra, "verifier-2", "verifier");
    let outs = world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    second.terminate();
    let verified = data_of(&outs, "verified");
    let parts: BTreeSet<_> = verified.iter().map(part_key).collect();
    assert_eq!(
        parts.len(),
        verified.len(),
        "nothing verified twice: the first never finished a check"
    );
    assert!(data_of(&outs, "failed").is_empty());
    stop_intake.send(()).unwrap();
    intake.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_longer_than_the_poll_interval_keeps_the_assignment() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 2).await;
    let (data, want) = requests(&world, 20, 2);
    // Every part waits 15 s on a paused partition; librdkafka drops a member that stops polling
    // for 6 s, so only polling while paused keeps the assignment.
    let extra = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"15s\"\n\
                 [kafka.properties]\n\"max.poll.interval.ms\" = \"6000\"\n\"session.timeout.ms\" = \"6000\"\n";
    let mut verifier = world.spawn_worker(extra, "verifier", "verifier");
    let (stop_intake, intake) = world.start(world.config(extra));
    world.publish_many(&data).await;
    let outs = world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    let log = std::fs::read_to_string(world.log_path("verifier")).unwrap();
    let verified = data_of(&outs, "verified");
    let parts: BTreeSet<_> = verified.iter().map(part_key).collect();
    assert_eq!(parts.len(), verified.len(), "each part verified once");
    // The worker's HTTP port: metrics count the checks; ready while the broker is up.
    let base = format!("http://{}", http_addr(&log));
    let http = reqwest::Client::new();
    let metrics = metrics_text(&http_addr(&log)).await;
    let verified_checks = format!(
        "erasure_verification_checks_total{{outcome=\"verified\"}} {}",
        parts.len()
    );
    assert!(metrics.contains(&verified_checks), "{verified_checks} in:\n{metrics}");
    // The parts that fall due together share their project's query.
    let queries: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("erasure_verification_queries_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("erasure_verification_queries_total in:\n{metrics}"));
    assert!(
        (1..=parts.len()).contains(&queries),
        "{queries} queries for {} parts",
        parts.len()
    );
    assert!(metrics.contains("erasure_time_to_verified_seconds_count"));
    wait_for_ready(&http, &base).await;
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    verifier.terminate();
    assert!(
        !log.contains("partitions revoked"),
        "the verifier kept its assignment:\n{log}"
    );
    stop_intake.send(()).unwrap();
    intake.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_verifier_replicas_split_the_work_and_verify_each_part_once() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 4).await;
    let (data, want) = requests(&world, 200, 6);
    // Both join before the first check is due (8 s), so no rebalance lands on a check in flight.
    let extra = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"8s\"\n";
    let mut replicas = [
        world.spawn_worker(extra, "verifier-a", "verifier"),
        world.spawn_worker(extra, "verifier-b", "verifier"),
    ];
    let (stop_intake, intake) = world.start(world.config(extra));
    world.publish_many(&data).await;
    let outs = world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    // Each replica reports consumer lag only for the partitions it owns: the series of partitions
    // the first one gave up at the rebalance are gone.
    let mut owned = Vec::new();
    for name in ["verifier-a", "verifier-b"] {
        let log = std::fs::read_to_string(world.log_path(name)).unwrap();
        let text = metrics_text(&http_addr(&log)).await;
        let series: BTreeSet<String> = text
            .lines()
            .filter(|l| l.starts_with("erasure_consumer_lag{"))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect();
        owned.push(series);
    }
    assert!(
        owned[0].is_disjoint(&owned[1]),
        "a partition's lag reported by both replicas: {owned:?}"
    );
    for r in &mut replicas {
        r.terminate();
    }
    let verified = data_of(&outs, "verified");
    let parts: BTreeSet<_> = verified.iter().map(part_key).collect();
    assert_eq!(
        parts.len(),
        verified.len(),
        "each part verified once between the replicas"
    );
    for name in ["verifier-a", "verifier-b"] {
        let log = std::fs::read_to_string(world.log_path(name)).unwrap();
        let checks = log.matches("checked").count();
        assert!(checks > 0, "{name} did some of the checks:\n{log}");
        eprintln!("{name}: {checks} checks");
    }
    stop_intake.send(()).unwrap();
    intake.await.unwrap().unwrap();
}
