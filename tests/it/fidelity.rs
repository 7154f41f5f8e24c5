//! The worker against LangSmith's current API, as the simulator plays it: v2 under either prefix
//! (`/api/v2`, or `/v2` as a fallback) with the workspace id it learns, a 403 on one project that
//! fails only that project's ids (`forbidden`), and selector time bounds on the traces' *start*.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use langsmith_sim::window::Schedule;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::private_simulator;
use crate::verify::{all_terminal, requests};
use crate::world::{data_of, Out, World};

const FAST: &str = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n";

fn ids_by_reason(outs: &[Out], topic: &str) -> BTreeMap<String, BTreeSet<Uuid>> {
    let mut by: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    for d in data_of(outs, topic) {
        let reason = d["reason"].as_str().unwrap_or(topic).to_owned();
        let ids = d["trace_ids"].as_array().unwrap().iter();
        by.entry(reason)
            .or_default()
            .extend(ids.map(|v| v.as_str().unwrap().parse::<Uuid>().unwrap()));
    }
    by
}

fn set_behaviour(world: &World, change: Value) {
    let mut b = serde_json::to_value(&*world.sim.behaviour()).unwrap();
    for (k, v) in change.as_object().unwrap() {
        b[k] = v.clone();
    }
    *world.sim.behaviour() = serde_json::from_value(b).unwrap();
}

/// Runs an intake and a verifier over `data` until every request of `want` has its terminal
/// events naming its ids; returns the outputs.
async fn both_roles(
    world: &World,
    config: erasure_worker::config::Config,
    data: &[Value],
    want: &BTreeMap<String, BTreeSet<Uuid>>,
) -> Vec<Out> {
    let (stop_intake, intake) = world.start(config.clone());
    let (stop_verifier, verifier) = world.start_verifier(config);
    world.publish_many(data).await;
    let outs = world.collect(Duration::from_secs(120), |o| all_terminal(o, want)).await;
    stop_intake.send(()).unwrap();
    stop_verifier.send(()).unwrap();
    intake.await.unwrap().unwrap();
    verifier.await.unwrap().unwrap();
    outs
}

/// Runs both roles over 12 requests with one v2 prefix switched off; every id must be verified,
/// every v2 call must carry the workspace id the worker learnt. Returns the v2 paths called.
async fn verify_with(switch_off: &str) -> Vec<(String, u16)> {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    set_behaviour(&world, json!({switch_off: false, "record_exchanges": true}));
    let (data, want) = requests(&world, 12, 2);
    let config = world.config(FAST);
    assert!(
        config.workspaces["main"].tenant_id.is_none(),
        "the worker must learn it"
    );
    let outs = both_roles(&world, config, &data, &want).await;
    assert_eq!(data_of(&outs, "failed"), Vec::<Value>::new(), "{switch_off} off");
    let verified = ids_by_reason(&outs, "verified").remove("verified").unwrap_or_default();
    let all: BTreeSet<Uuid> = want.values().flatten().copied().collect();
    assert_eq!(verified, all, "{switch_off} off: every id verified");
    let v2: Vec<_> = world
        .sim
        .exchanges()
        .iter()
        .filter(|e| e.path.contains("/v2/"))
        .map(|e| {
            assert!(e.tenant, "v2 call without X-Tenant-Id: {e:?}");
            (e.path.clone(), e.status)
        })
        .collect();
    assert!(!v2.is_empty());
    v2
}

/// The v2 calls: checks, and the intake's look at where the ids are before a delete.
const V2_CALLS: [&str; 2] = ["/v2/traces/query", "/v2/runs/query"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_verify_everything_with_bare_v2_turned_off() {
    let calls = verify_with("serve_bare_v2").await;
    assert!(
        calls
            .iter()
            .all(|(p, s)| V2_CALLS.contains(&p.trim_start_matches("/api")) && *s == 200),
        "only /api/v2, answered: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_verify_everything_with_api_v2_turned_off() {
    let calls = verify_with("serve_api_v2").await;
    let (probes, rest): (Vec<_>, Vec<_>) = calls.iter().partition(|(p, _)| p.starts_with("/api/v2/"));
    assert!(
        !probes.is_empty() && probes.iter().all(|(_, s)| *s == 404),
        "{probes:?}"
    );
    assert!(
        probes.len() <= 16,
        "the fallback is remembered: {} probes (at most one per check in flight)",
        probes.len()
    );
    assert!(
        rest.iter().all(|(p, s)| V2_CALLS.contains(&p.as_str()) && *s == 200),
        "{rest:?}"
    );
}

/// Traces in `session` for one request each: (request data, trace ids).
fn request_for(world: &World, id: &str, session: Uuid, n: usize) -> (Value, BTreeSet<Uuid>) {
    let ids = world.traces(session, n);
    let data = json!({"request_id": id, "targets": [{"session_id": session, "trace_ids": ids}]});
    (data, ids.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_forbidden_by_langsmith_fails_as_forbidden_and_holds_no_other() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let [open, denied, later] = world.sessions(3)[..] else {
        unreachable!()
    };
    let (a, open_ids) = request_for(&world, "r-open", open, 3);
    let (b, denied_ids) = request_for(&world, "r-denied", denied, 3);
    let (c, later_ids) = request_for(&world, "r-later", later, 3);
    // `denied` refuses deletes from the start; `later` refuses once its delete was accepted, so
    // its check is what LangSmith forbids.
    set_behaviour(&world, json!({"forbidden_projects": [denied]}));
    let config = world.config(FAST);
    let (stop_intake, intake) = world.start(config.clone());
    world.publish_many(&[b, a, c]).await;
    world
        .collect(Duration::from_secs(60), |o| {
            data_of(o, "requested").len() == 2 && data_of(o, "failed").len() == 1
        })
        .await;
    set_behaviour(&world, json!({"forbidden_projects": [denied, later]}));
    let (stop_verifier, verifier) = world.start_verifier(config);
    let mut want = BTreeMap::new();
    want.insert("r-open".to_owned(), open_ids.clone());
    want.insert("r-denied".to_owned(), denied_ids.clone());
    want.insert("r-later".to_owned(), later_ids.clone());
    let outs = world.collect(Duration::from_secs(60), |o| all_terminal(o, &want)).await;
    stop_intake.send(()).unwrap();
    stop_verifier.send(()).unwrap();
    intake.await.unwrap().unwrap();
    verifier.await.unwrap().unwrap();
    let failed = ids_by_reason(&outs, "failed");
    let forbidden: BTreeSet<Uuid> = denied_ids.union(&later_ids).copied().collect();
    assert_eq!(failed.keys().collect::<Vec<_>>(), ["forbidden"], "{failed:?}");
    assert_eq!(failed["forbidden"], forbidden, "exactly the forbidden projects' ids");
    let verified = ids_by_reason(&outs, "verified").remove("verified").unwrap_or_default();
    assert_eq!(verified, open_ids, "the open project is deleted and verified");
    for d in data_of(&outs, "failed") {
        assert!(
            crate::schemas::validator("erasure.deletion.failed.v1").is_valid(&d),
            "{d}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_range_bounds_start_times_so_a_trace_ending_after_it_is_found() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let run = |id: Uuid, start: &str, end: Option<&str>| {
        json!({"id": id, "session_id": session, "metadata": {"user_id": "u-77"},
               "start_time": start, "end_time": end})
    };
    let runs = json!([
        run(ids[0], "2026-01-10T00:00:00Z", Some("2026-01-20T00:00:00Z")), // ends after the range
        run(ids[1], "2026-01-12T00:00:00Z", None),                         // never ended
        run(ids[2], "2026-01-14T00:00:00Z", Some("2026-01-14T00:05:00Z")), // inside
        run(ids[3], "2026-01-16T00:00:00Z", Some("2026-01-16T00:05:00Z")), // starts after
        run(ids[4], "2026-01-05T00:00:00Z", Some("2026-01-09T00:00:00Z")), // starts before
    ]);
    for r in runs.as_array().unwrap() {
        world
            .sim
            .state()
            .add_run(world.ws, serde_json::from_value(r.clone()).unwrap())
            .unwrap();
    }
    let selector = json!({"metadata": {"user_id": "u-77"}, "session_id": session,
                          "start_time": "2026-01-08T00:00:00Z", "end_time": "2026-01-15T00:00:00Z"});
    let (stop, intake) = world.start(world.config(FAST));
    world
        .publish(json!({"request_id": "r-range", "targets": [selector]}))
        .await;
    let outs = world
        .collect(Duration::from_secs(60), |o| !data_of(o, "requested").is_empty())
        .await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    let requested = ids_by_reason(&outs, "requested")
        .remove("requested")
        .unwrap_or_default();
    assert_eq!(
        requested,
        ids[..3].iter().copied().collect(),
        "started inside the range, however it ended"
    );
}

/// Personal data often sits in a child run's metadata. A selector erases every trace with a run
/// holding its pairs, root or child, and proves each gone; `root_only` keeps to root runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_in_a_child_run_is_found_deleted_and_verified() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let trace = |root: Value, child: Value| {
        let root_id = Uuid::new_v4();
        let runs = [
            json!({"id": root_id, "session_id": session, "metadata": root}),
            json!({"trace_id": root_id, "parent_run_id": root_id, "session_id": session, "metadata": child}),
        ];
        for run in runs {
            let run = serde_json::from_value(run).unwrap();
            world.sim.state().add_run(world.ws, run).unwrap();
        }
        root_id
    };
    let in_child = trace(json!({"tenant": "t"}), json!({"user_id": "u-31"}));
    let in_root = trace(json!({"user_id": "u-31"}), json!({}));
    // The root-only request has a subject of its own: resolved after the other's deletes were
    // applied, a shared trace would be found by neither.
    let child_only = trace(json!({}), json!({"user_id": "u-41"}));
    let root_only = trace(json!({"user_id": "u-41"}), json!({}));
    let other = trace(json!({"user_id": "u-32"}), json!({"user_id": "u-33"}));
    let want = BTreeMap::from([
        ("anywhere".to_owned(), BTreeSet::from([in_child, in_root])),
        ("root".to_owned(), BTreeSet::from([root_only])),
    ]);
    let data = [
        json!({"request_id": "anywhere", "targets": [{"metadata": {"user_id": "u-31"}}]}),
        json!({"request_id": "root", "targets": [{"metadata": {"user_id": "u-41"}, "root_only": true}]}),
    ];
    let outs = both_roles(&world, world.config(FAST), &data, &want).await;
    assert_eq!(data_of(&outs, "failed"), Vec::<Value>::new());
    for (request, ids) in &want {
        let verified: BTreeSet<Uuid> = data_of(&outs, "verified")
            .iter()
            .filter(|d| d["request_id"] == request.as_str())
            .flat_map(|d| d["trace_ids"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(&verified, ids, "{request}: every trace it matched, verified");
    }
    let state = world.sim.state();
    let traces = &state.workspaces[&world.ws].traces;
    for gone in [in_child, in_root, root_only] {
        assert!(!traces.contains_key(&gone), "gone");
    }
    assert!(
        traces.contains_key(&child_only),
        "root_only leaves a trace whose root does not match"
    );
    assert!(traces.contains_key(&other), "another subject's trace stays");
}
