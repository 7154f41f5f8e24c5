//! The intake under failure: SIGKILL and restart, 429 storms, 5xx bursts, a minute-long outage,
//! and two replicas sharing the partitions. Each proves nothing is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use langsmith_sim::faults::Class;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::intake::{all_requested, explicit_requests, wanted};
use crate::support::{private_simulator, simulator, wait_for};
use crate::world::World;

/// Every id of every request reached the delete API in its own session.
fn all_sent(world: &World, want: &BTreeMap<(String, Uuid), BTreeSet<Uuid>>) {
    let mut sent: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
    for (s, ids) in world.sim.delete_calls(world.ws) {
        sent.entry(s).or_default().extend(ids);
    }
    for ((req, s), ids) in want {
        assert!(
            sent.get(s).is_some_and(|got| got.is_superset(ids)),
            "{req}: not every id was sent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_and_restarted_loses_nothing() {
    let world = World::new(simulator(), 2).await;
    let sessions = world.sessions(20);
    let reqs = explicit_requests(3000, &sessions, 5, 2);
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(&reqs);

    // Slow on purpose (small batches, few calls per second), so the kill lands mid-stream.
    let mut first = world.spawn_worker(
        "[intake]\nlinger = \"100ms\"\nmax_batch = 50\n[limits]\nscope = \"replica\"\ndelete_per_second = 5\n",
        "slow",
        "intake",
    );
    wait_for("first delete calls", Duration::from_secs(60), || {
        world.sim.delete_calls(world.ws).len() >= 10
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let before = world.sim.delete_calls(world.ws).len();

    let mut second = world.spawn_worker("[intake]\nlinger = \"100ms\"\n", "fast", "intake");
    let outs = world
        .collect(Duration::from_secs(120), |o| all_requested(o, &want))
        .await;
    second.terminate();
    all_sent(&world, &want);
    let events = outs.iter().filter(|o| o.topic == "requested").count();
    eprintln!(
        "killed after {before} calls; {events} deletion-requested events for {} parts (duplicates allowed)",
        want.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_storms_error_bursts_and_an_outage_lose_nothing() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let sessions = world.sessions(5);
    let put = |class: &str, spec: Value| {
        sim.sim.faults().set(
            serde_json::from_value(json!(class)).unwrap(),
            serde_json::from_value(spec).unwrap(),
        );
    };
    let counters = || sim.sim.counters().clone();
    let config = "[intake]\nlinger = \"100ms\"\nmax_batch = 50\n[retry]\nbase = \"200ms\"\nmax = \"5s\"\nrate_limited_base = \"500ms\"\n";
    let (stop, handle) = world.start(world.config(config));
    let mut all_want = BTreeMap::new();
    let mut phase = |n: usize, seed: u64| {
        let reqs = explicit_requests(n, &sessions, 5, seed);
        let reqs: Vec<(Value, _)> = reqs
            .into_iter()
            .enumerate()
            .map(|(i, (mut d, w))| {
                d["request_id"] = json!(format!("p{seed}-{i}"));
                (d, w)
            })
            .collect();
        let want = wanted(&reqs);
        all_want.extend(want.clone());
        (reqs.into_iter().map(|(d, _)| d).collect::<Vec<_>>(), want)
    };

    // 429 storm with Retry-After: two calls per 3 s window.
    put(
        "delete",
        json!({"rate_limit": {"requests": 2, "window_ms": 3000, "retry_after": true}}),
    );
    let (data, want) = phase(150, 1);
    world.publish_many(&data).await;
    world
        .collect(Duration::from_secs(120), |o| all_requested(o, &want))
        .await;
    let c = counters();
    let accepted = c.delete_calls_accepted;
    assert!(
        c.rate_limited <= 4 * (accepted / 2 + 2),
        "{} 429s for {accepted} accepted calls: a tight loop",
        c.rate_limited
    );
    eprintln!(
        "429 with Retry-After: {accepted} accepted calls, {} 429s",
        c.rate_limited
    );

    // 429 storm without Retry-After: exponential backoff with jitter.
    put(
        "delete",
        json!({"rate_limit": {"requests": 2, "window_ms": 2000, "retry_after": false}}),
    );
    let before = counters();
    let (data, want) = phase(100, 2);
    world.publish_many(&data).await;
    world
        .collect(Duration::from_secs(120), |o| all_requested(o, &want))
        .await;
    let c = counters();
    let (accepted, limited) = (
        c.delete_calls_accepted - before.delete_calls_accepted,
        c.rate_limited - before.rate_limited,
    );
    assert!(
        limited <= 8 * (accepted + 2),
        "{limited} 429s for {accepted} accepted calls: a tight loop"
    );
    eprintln!("429 without Retry-After: {accepted} accepted calls, {limited} 429s");

    // A 5xx burst: half the calls fail.
    put("delete", json!({"error_ratio": 0.5, "error_status": 503}));
    let (data, want) = phase(100, 3);
    world.publish_many(&data).await;
    world
        .collect(Duration::from_secs(120), |o| all_requested(o, &want))
        .await;
    // One partition: the committed offset counts the events done (150 + 100 + 100).
    let committed_before_outage = 350;
    wait_for_commit(&world, committed_before_outage).await;

    // A minute-long outage: nothing is accepted, so nothing published during it may be committed.
    put("delete", json!({"error_ratio": 1.0, "error_status": 503}));
    let before = counters();
    let (data, want) = phase(100, 4);
    world.publish_many(&data).await;
    let outage_end = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < outage_end {
        let committed = world.committed(1).await[&0];
        assert!(
            committed <= committed_before_outage,
            "committed {committed} past unaccepted work ({committed_before_outage})"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let during = counters().injected_errors - before.injected_errors;
    assert!(during <= 150, "{during} calls in a 60 s outage: a tight retry loop");
    eprintln!("outage: {during} failed calls in 60 s");
    put("delete", json!({}));
    world
        .collect(Duration::from_secs(120), |o| all_requested(o, &want))
        .await;
    wait_for_commit(&world, committed_before_outage + 100).await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    all_sent(&world, &all_want);
}

async fn wait_for_commit(world: &World, at_least: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let committed = world.committed(1).await[&0];
        if committed >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "committed {committed}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_partitions_and_lose_nothing() {
    let world = World::new(simulator(), 4).await;
    let sessions = world.sessions(10);
    // A second key for the same workspace, so the audit log tells the replicas apart.
    let key2 = format!("lsv2_pt_{}", Uuid::new_v4().simple());
    let add = json!({"id": world.ws, "api_keys": [key2]});
    world
        .sim
        .state()
        .create_workspace(serde_json::from_value(add).unwrap())
        .expect("a new key");
    let key2_file = std::env::temp_dir().join(format!("{}.key2", world.prefix));
    std::fs::write(&key2_file, &key2).unwrap();

    let reqs = explicit_requests(4000, &sessions, 5, 3);
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(&reqs);
    // Slow enough (small batches, few calls per second) that the second replica joins mid-stream.
    let slow = "[intake]\nlinger = \"200ms\"\nmax_batch = 100\n[limits]\nscope = \"replica\"\ndelete_per_second = 10\n";
    let (stop_a, a) = world.start(world.config(slow));
    let second = world
        .config_toml(slow)
        .replace(&world.key_file.display().to_string(), &key2_file.display().to_string());
    let (stop_b, b) = world.start(erasure_worker::config::Config::parse(&second).unwrap());
    world
        .collect(Duration::from_secs(120), |o| all_requested(o, &want))
        .await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    all_sent(&world, &want);
    let keys: BTreeSet<Uuid> = world.sim.state().workspaces[&world.ws]
        .audit
        .iter()
        .map(|e| e.api_key_id)
        .collect();
    assert_eq!(keys.len(), 2, "both replicas deleted: they split the partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_by_backpressure_reads_again_after_a_rebalance() {
    let sim = private_simulator();
    sim.sim.clear_faults();
    let world = World::new(&sim, 2).await;
    let sessions = world.sessions(20);
    let reqs = explicit_requests(2000, &sessions, 3, 4);
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(&reqs);
    // Delete calls that take 20 s and a low in-flight bound: the first replica pauses its input
    // and stays paused while the second one joins.
    let slow = json!({"latency_ms": 20_000});
    sim.sim
        .faults()
        .set(Class::Delete, serde_json::from_value(slow).unwrap());
    // Per-replica limits: the small batches need a v2 query each (where the ids live), and the
    // replicas' shares of workspace-wide ones would make the run slower than the test's bound.
    let extra =
        "[intake]\nlinger = \"100ms\"\nmax_batch = 50\nmax_in_flight_ids = 200\n[limits]\nscope = \"replica\"\n";
    let mut first = world.spawn_worker(extra, "paused", "intake");
    let log = world.log_path("paused");
    let paused = || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("input backpressure"));
    wait_for("the first replica pauses its input", Duration::from_secs(60), paused).await;
    // The first is revoked and handed a partition back while paused.
    let mut second = world.spawn_worker(extra, "joined", "intake");
    let revoked = || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("partitions revoked"));
    wait_for("a rebalance", Duration::from_secs(60), revoked).await;
    sim.sim.clear_faults();
    world
        .collect(Duration::from_secs(180), |o| all_requested(o, &want))
        .await;
    first.terminate();
    second.terminate();
    all_sent(&world, &want);
}
