//! A workspace LangSmith refuses holds only its own work: with `b`'s key refused (401), requests for
//! the healthy `a` on the same partition still get their events at once, and `b`'s complete once
//! its key is accepted again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use erasure_worker::config::Config;
use serde_json::json;
use uuid::Uuid;

use crate::support::{private_simulator, Simulator};
use crate::world::{data_of, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_workspace_holds_only_its_own_requests() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    world.sessions(2);
    // Workspace `b` exists with its projects, but the key the worker holds for it is not bound yet.
    let projects: Vec<String> = (0..4).map(|i| format!("b-project-{i}")).collect();
    let (b, b_key, config) = with_refused_b(&world, &sim, &projects, "");
    let (stop, intake) = world.start(config);

    let b_requests: Vec<_> = (0..80)
        .map(|i| {
            let target = json!({"session_name": format!("b-project-{}", i % 4), "trace_ids": [Uuid::new_v4()]});
            json!({"request_id": format!("b-{i}"), "workspace": "b", "targets": [target]})
        })
        .collect();
    let a_requests: Vec<_> = (0..20)
        .map(|i| {
            let target = json!({"session_name": "project-1", "trace_ids": [Uuid::new_v4()]});
            json!({"request_id": format!("a-{i}"), "targets": [target]})
        })
        .collect();
    world.publish_many(&b_requests).await;
    let published = Instant::now();
    world.publish_many(&a_requests).await;
    let (outs, finished) = world
        .collect_until(Duration::from_secs(10), |o| count(o, "requested", "a-") == 20)
        .await;
    assert!(
        finished,
        "{} of 20 requests of the healthy workspace got their events within 10 s",
        count(&outs, "requested", "a-")
    );
    eprintln!(
        "20 requests of `a` requested {:.1} s after publishing, while `b` was refused",
        published.elapsed().as_secs_f64()
    );

    // `b`'s key is accepted again: its requests complete.
    bind_key(&world, b, b_key);
    world
        .collect(Duration::from_secs(60), |o| count(o, "requested", "b-") == 80)
        .await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
}

/// More of the refused workspace's events than its share of the in-flight bound (half of it, with two
/// workspaces): they are set aside instead of pausing the input, so `a`'s requests behind them on
/// the same partition still get their events; once `b`'s key is accepted again they are read again
/// and complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_workspace_past_its_share_of_the_bound_is_set_aside_not_paused_for() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    world.sessions(1);
    let projects = ["b-project".to_owned()];
    let (b, b_key, config) = with_refused_b(&world, &sim, &projects, "max_in_flight_ids = 1000\n");
    let (stop, intake) = world.start(config);
    let mut requests: Vec<_> = (0..1500)
        .map(|i| {
            let target = json!({"session_name": "b-project", "trace_ids": [Uuid::new_v4()]});
            json!({"request_id": format!("b-{i}"), "workspace": "b", "targets": [target]})
        })
        .collect();
    requests.extend((0..20).map(|i| {
        let target = json!({"session_name": "project-0", "trace_ids": [Uuid::new_v4()]});
        json!({"request_id": format!("a-{i}"), "targets": [target]})
    }));
    world.publish_many(&requests).await;
    let (outs, finished) = world
        .collect_until(Duration::from_secs(10), |o| count(o, "requested", "a-") == 20)
        .await;
    assert!(
        finished,
        "{} of 20 requests of the healthy workspace got their events within 10 s, behind 1,500 of `b`",
        count(&outs, "requested", "a-")
    );
    bind_key(&world, b, b_key);
    world
        .collect(Duration::from_secs(60), |o| count(o, "requested", "b-") == 1500)
        .await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    assert_eq!(world.committed(1).await[&0], 1520, "every offset committed in the end");
}

/// Workspace `b` with `projects`, and a config (the intake's settings plus `intake`) holding a key
/// for `b` that LangSmith does not know yet, `main` the default. Returns `b`, the key (`bind_key`
/// makes LangSmith accept it) and the config.
pub(crate) fn with_refused_b(
    world: &World,
    sim: &Simulator,
    projects: &[String],
    intake: &str,
) -> (Uuid, String, Config) {
    let (b, _) = sim.workspace();
    for name in projects {
        let new = serde_json::from_value(json!({"name": name})).unwrap();
        world.sim.state().add_session(b, new).unwrap();
    }
    let b_key = format!("lsv2_pt_{}", Uuid::new_v4().simple());
    let b_key_file = std::env::temp_dir().join(format!("{}.b.key", world.prefix));
    std::fs::write(&b_key_file, &b_key).unwrap();
    let extra = format!(
        "[intake]\nlinger = \"200ms\"\n{intake}[retry]\nmax = \"1s\"\n[workspaces.b]\napi_url = \"{}\"\napi_key_file = \"{}\"\n",
        world.sim_url,
        b_key_file.display()
    );
    let mut config = world.config(&extra);
    config.default_workspace = Some("main".into());
    (b, b_key, config)
}

/// Binds `key` to workspace `b` in the simulator: LangSmith accepts it again.
pub(crate) fn bind_key(world: &World, b: Uuid, key: String) {
    let bind = json!({"id": b, "api_keys": [key]});
    world
        .sim
        .state()
        .create_workspace(serde_json::from_value(bind).unwrap())
        .unwrap();
}

/// Requests whose id starts with `prefix` that have an event on `topic`.
fn count(o: &[crate::world::Out], topic: &str, prefix: &str) -> usize {
    let ids: BTreeSet<String> = data_of(o, topic)
        .iter()
        .map(|d| d["request_id"].as_str().unwrap().to_owned())
        .filter(|r| r.starts_with(prefix))
        .collect();
    ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_refused_at_check_time_holds_only_its_own_checks() {
    refused_at_check_time(40, "").await;
}

/// With `max_concurrent_checks = 1` the verifier holds at most 256 checks in flight, 128 per
/// workspace: 300 parts of the refused `b` ahead of `a`'s on the one partition would fill the bound
/// and pause the partition until `b` came back. Past its share, `b`'s parts are set aside instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_workspace_past_its_share_of_the_checks_is_set_aside_not_paused_for() {
    refused_at_check_time(300, "[verifier]\nmax_concurrent_checks = 1\n").await;
}

/// `b_parts` parts of `b` then 10 of `a` are requested; `b`'s key is refused before the verifier
/// starts (with `verifier` in its config). `a`'s parts are verified at once; `b`'s once its key
/// works again.
async fn refused_at_check_time(b_parts: usize, verifier: &str) {
    let sim = private_simulator();
    sim.sim
        .set_schedule(langsmith_sim::window::Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let a_sessions = world.sessions(1);
    let (b, b_key) = sim.workspace();
    let new = serde_json::from_value(json!({"name": "b-project"})).unwrap();
    let b_session = world.sim.state().add_session(b, new).unwrap();
    let b_key_file = std::env::temp_dir().join(format!("{}.b.key", world.prefix));
    std::fs::write(&b_key_file, &b_key).unwrap();
    let extra = format!(
        "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n[retry]\nmax = \"1s\"\n\
         [workspaces.b]\napi_url = \"{}\"\napi_key_file = \"{}\"\n{verifier}",
        world.sim_url,
        b_key_file.display()
    );
    let mut config = world.config(&extra);
    config.default_workspace = Some("main".into());
    let (stop_intake, intake) = world.start(config.clone());
    let generate = |ws: Uuid, session: Uuid| {
        let gen = json!({"session_id": session, "traces": 1, "return_ids": true});
        world
            .sim
            .state()
            .generate(ws, serde_json::from_value(gen).unwrap())
            .unwrap()
            .1
    };
    let mut requests: Vec<_> = (0..b_parts)
        .map(|i| {
            let target = json!({"session_id": b_session, "trace_ids": generate(b, b_session)});
            json!({"request_id": format!("b-{i}"), "workspace": "b", "targets": [target]})
        })
        .collect();
    requests.extend((0..10).map(|i| {
        let target = json!({"session_id": a_sessions[0], "trace_ids": generate(world.ws, a_sessions[0])});
        json!({"request_id": format!("a-{i}"), "targets": [target]})
    }));
    world.publish_many(&requests).await;
    world
        .collect(Duration::from_secs(30), |o| count(o, "requested", "") == b_parts + 10)
        .await;

    // `b`'s key stops working before its checks run; `a`'s checks go on.
    world.sim.state().keys.remove(&b_key);
    let (stop_verifier, verifier) = world.start_verifier(config);
    let (outs, finished) = world
        .collect_until(Duration::from_secs(15), |o| count(o, "verified", "a-") == 10)
        .await;
    assert!(
        finished,
        "{} of 10 requests of the healthy workspace verified within 15 s",
        count(&outs, "verified", "a-")
    );
    bind_key(&world, b, b_key);
    world
        .collect(Duration::from_secs(60), |o| count(o, "verified", "b-") == b_parts)
        .await;
    for (stop, task) in [(stop_intake, intake), (stop_verifier, verifier)] {
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
