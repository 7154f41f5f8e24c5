//! The intake against Tansu and the simulator: volume and minimal calls, resolution outcomes,
//! and the DLQ.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::schemas::validator;
use crate::support::{private_simulator, simulator};
use crate::world::{data_of, Out, World};

/// A small deterministic generator (no rand dependency for tests).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `n` explicit requests spread over `sessions`, each with 1..=max_ids fresh trace ids;
/// returns the ids wanted per (request, session).
pub fn explicit_requests(
    n: usize,
    sessions: &[Uuid],
    max_ids: u64,
    seed: u64,
) -> Vec<(Value, BTreeMap<Uuid, BTreeSet<Uuid>>)> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let session = sessions[rng.next(sessions.len() as u64) as usize];
            let ids: BTreeSet<Uuid> = (0..=rng.next(max_ids)).map(|_| Uuid::new_v4()).collect();
            let data =
                json!({"request_id": format!("req-{i}"), "targets": [{"session_id": session, "trace_ids": ids}]});
            (data, BTreeMap::from([(session, ids)]))
        })
        .collect()
}

/// Every (request, session) got all its ids in deletion-requested events (duplicates allowed).
pub fn all_requested(outs: &[Out], want: &BTreeMap<(String, Uuid), BTreeSet<Uuid>>) -> bool {
    let mut got: BTreeMap<(String, Uuid), BTreeSet<Uuid>> = BTreeMap::new();
    for d in data_of(outs, "requested") {
        let key = (
            d["request_id"].as_str().unwrap().to_owned(),
            d["session_id"].as_str().unwrap().parse().unwrap(),
        );
        let ids = d["trace_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse::<Uuid>().unwrap());
        got.entry(key).or_default().extend(ids);
    }
    want.iter()
        .all(|(k, ids)| got.get(k).is_some_and(|g| g.is_superset(ids)))
}

pub fn wanted(reqs: &[(Value, BTreeMap<Uuid, BTreeSet<Uuid>>)]) -> BTreeMap<(String, Uuid), BTreeSet<Uuid>> {
    let mut want = BTreeMap::new();
    for (data, per) in reqs {
        for (s, ids) in per {
            want.insert((data["request_id"].as_str().unwrap().to_owned(), *s), ids.clone());
        }
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_across_fifty_sessions_take_the_minimum_calls() {
    let world = World::new(simulator(), 4).await;
    let sessions = world.sessions(50);
    let reqs = explicit_requests(10_000, &sessions, 10, 1);
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(&reqs);
    // A linger well past the time to read the backlog, so a slow machine does not flush a batch
    // before the rest of its ids arrive (with 2 s, a loaded CI machine made 97 calls for 95).
    let (stop, handle) = world.start(world.config("[intake]\nlinger = \"10s\"\n"));
    let outs = world
        .collect(Duration::from_secs(180), |o| all_requested(o, &want))
        .await;
    stop.send(()).unwrap();
    handle.await.unwrap().expect("intake stops cleanly");

    // Every call holds at most 1000 ids of one session, and there are no more calls than needed.
    let calls = world.sim.delete_calls(world.ws);
    let mut per_session: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
    for (_, per) in &reqs {
        for (s, ids) in per {
            per_session.entry(*s).or_default().extend(ids);
        }
    }
    let minimum: usize = per_session.values().map(|ids| ids.len().div_ceil(1000)).sum();
    assert!(calls.iter().all(|(_, ids)| ids.len() <= 1000));
    let mut sent: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
    for (s, ids) in &calls {
        sent.entry(*s).or_default().extend(ids);
    }
    assert_eq!(sent, per_session, "every id reached the delete API in its own session");
    assert!(
        calls.len() as f64 <= minimum as f64 * 1.02,
        "{} calls for a minimum of {minimum}",
        calls.len()
    );
    eprintln!("delete calls: {} (minimum {minimum})", calls.len());

    // One deletion-requested event per (request, session, part), each valid against its schema.
    let schema = validator("erasure.deletion.requested.v1");
    let mut seen = HashSet::new();
    for o in outs.iter().filter(|o| o.topic == "requested") {
        let envelope = o.json();
        assert_eq!(envelope["type"], "erasure.deletion.requested.v1");
        assert_eq!(
            o.headers.get("content-type").map(String::as_str),
            Some("application/cloudevents+json")
        );
        let d = &envelope["data"];
        assert!(schema.is_valid(d), "{d}");
        assert_eq!(o.key.as_deref(), d["request_id"].as_str(), "keyed by request id");
        seen.insert((
            d["request_id"].to_string(),
            d["session_id"].to_string(),
            d["part"].as_u64(),
        ));
    }
    assert_eq!(seen.len(), want.len(), "one event per (request, session, part)");
}

/// A backlog over more projects than a second's project lookups: each project's events wait for its
/// lookup without holding a resolution permit, so they reach the coalescer together and go in one
/// call. When they held the permits, the events of a project looked up early trickled in behind the
/// others' lookups, after its batch had gone (two calls for most projects). The projects are named
/// by name: an id in the workspace's list of projects needs no lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_waiting_for_its_project_lookups_takes_one_call_per_project() {
    let sim = private_simulator();
    let world = World::new(&sim, 4).await;
    let sessions = world.sessions(20);
    let mut reqs = explicit_requests(400, &sessions, 3, 7);
    for (data, want) in &mut reqs {
        let session = want.keys().next().unwrap();
        let n = sessions.iter().position(|s| s == session).unwrap();
        data["targets"][0] = json!({"session_name": format!("project-{n}"), "trace_ids": want[session]});
    }
    let calls = backlog_at_five_lookups_a_second(&world, &reqs).await;
    let projects: BTreeSet<Uuid> = calls.iter().map(|(s, _)| *s).collect();
    assert_eq!(projects.len(), 20, "every project had deletes");
    assert_eq!(calls.len(), 20, "one delete call per project: {} made", calls.len());
}

/// Project ids in the workspace's list of projects are not looked up one by one: a backlog over
/// 20 of them, at 5 lookups a second, needs one listing before its first deletes (the one the
/// look for misplaced ids uses), and still goes in one call per project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_listed_projects_needs_no_lookup_per_project() {
    let sim = private_simulator();
    let world = World::new(&sim, 4).await;
    let sessions = world.sessions(20);
    let reqs = explicit_requests(400, &sessions, 3, 8);
    let calls = backlog_at_five_lookups_a_second(&world, &reqs).await;
    let counters = world.sim.counters().clone();
    assert_eq!(
        counters.calls_to(&["GET /sessions/{id}"]),
        0,
        "no project looked up by id"
    );
    assert!(counters.calls_to(&["GET /sessions"]) >= 1, "the projects were listed");
    assert_eq!(calls.len(), 20, "one delete call per project: {} made", calls.len());
}

/// Publishes `reqs`, runs the intake until all are requested with project lookups at 5 a second
/// (20 of them take 4 s, twice the linger), and returns the delete calls made.
async fn backlog_at_five_lookups_a_second(
    world: &World,
    reqs: &[(Value, BTreeMap<Uuid, BTreeSet<Uuid>>)],
) -> Vec<(Uuid, Vec<Uuid>)> {
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(reqs);
    let config = world.config("[limits]\nscope = \"replica\"\nsessions_per_second = 5\n");
    let (stop, handle) = world.start(config);
    world
        .collect(Duration::from_secs(60), |o| all_requested(o, &want))
        .await;
    stop.send(()).unwrap();
    handle.await.unwrap().expect("intake stops cleanly");
    world.sim.delete_calls(world.ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_selectors_and_unknown_projects_resolve_to_their_outcomes() {
    let world = World::new(simulator(), 1).await;
    let sessions = world.sessions(2);
    let gen = json!({"session_id": sessions[1], "traces": 30, "return_ids": true, "metadata": [{"key": "user_id", "prefix": "u", "distinct": 3}]});
    let made = world
        .sim
        .state()
        .generate(world.ws, serde_json::from_value(gen).unwrap())
        .unwrap()
        .1;
    // Traces n with n % 3 == 1 carry user_id "u1".
    let u1: BTreeSet<Uuid> = made
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 3 == 1)
        .map(|(_, id)| *id)
        .collect();
    let t = Uuid::new_v4();
    world
        .publish(json!({"request_id": "by-name", "targets": [{"session_name": "project-0", "trace_ids": [t]}]}))
        .await;
    world
        .publish(json!({"request_id": "selector", "targets": [{"metadata": {"user_id": "u1"}}]}))
        .await;
    world
        .publish(json!({"request_id": "nobody", "targets": [{"metadata": {"user_id": "\") or(eq(name, \"chat"}}]}))
        .await;
    world
        .publish(json!({"request_id": "lost", "targets": [{"session_name": "no-such-project", "trace_ids": [t]}]}))
        .await;
    world
        .publish(json!({"request_id": "lost-id", "targets": [{"session_id": Uuid::new_v4(), "trace_ids": [t]}]}))
        .await;
    let (stop, handle) = world.start(world.config("[intake]\nlinger = \"200ms\"\n"));
    let outs = world.collect(Duration::from_secs(60), |o| o.len() >= 5).await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();

    let by = |id: &str| -> Vec<&Out> { outs.iter().filter(|o| o.json()["data"]["request_id"] == id).collect() };
    let named = by("by-name");
    assert_eq!(
        (named[0].topic.as_str(), named[0].json()["data"]["session_id"].clone()),
        ("requested", json!(sessions[0]))
    );
    let selected = by("selector")[0].json()["data"].clone();
    let got: BTreeSet<Uuid> = serde_json::from_value(selected["trace_ids"].clone()).unwrap();
    assert_eq!(got, u1, "the selector found exactly the traces with user_id u1");
    let nobody = by("nobody")[0];
    assert_eq!(nobody.topic, "verified", "an injected filter matches nothing");
    assert_eq!(nobody.json()["data"]["trace_ids"], json!([]));
    for lost in ["lost", "lost-id"] {
        let f = by(lost)[0];
        assert_eq!(
            (f.topic.as_str(), f.json()["data"]["reason"].as_str()),
            ("failed", Some("unknown_session"))
        );
        assert!(validator("erasure.deletion.failed.v1").is_valid(&f.json()["data"]));
    }
    assert!(validator("erasure.deletion.verified.v1").is_valid(&nobody.json()["data"]));
}

/// A selector matching five times the in-flight bound: its pages go to delete calls as they come,
/// never more than the bound (and a page) ahead of them, and its parts are counted once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_wider_than_the_in_flight_bound_is_deleted_as_its_pages_come() {
    let sim = private_simulator();
    sim.sim.clear_faults();
    sim.sim.behaviour().record_exchanges = true;
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let gen = json!({"session_id": session, "traces": 5000, "return_ids": true,
                     "metadata": [{"key": "user_id", "prefix": "w", "distinct": 1}]});
    let made = sim
        .sim
        .state()
        .generate(world.ws, serde_json::from_value(gen).unwrap())
        .unwrap()
        .1;
    world
        .publish(json!({"request_id": "wide", "targets": [{"metadata": {"user_id": "w0"}}]}))
        .await;
    let extra = "[intake]\nlinger = \"200ms\"\nmax_in_flight_ids = 1000\n\
                 [limits]\nscope = \"replica\"\nquery_wide_per_second = 1000\nquery_v2_per_second = 1000\n";
    let (stop, handle) = world.start(world.config(extra));
    let outs = world
        .collect(Duration::from_secs(60), |o| data_of(o, "requested").len() >= 5)
        .await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();

    let mut parts = Vec::new();
    let mut got = BTreeSet::new();
    for d in data_of(&outs, "requested") {
        parts.push((d["part"].as_u64().unwrap(), d["parts"].as_u64().unwrap()));
        got.extend(serde_json::from_value::<Vec<Uuid>>(d["trace_ids"].clone()).unwrap());
    }
    parts.sort();
    assert_eq!(
        parts,
        (0..5).map(|p| (p, 5)).collect::<Vec<_>>(),
        "five parts, each counted"
    );
    assert_eq!(got, made.into_iter().collect(), "every trace the selector matches");
    // Read from the simulator's log, in the order its answers went out: trace ids found by the
    // selector's query (v2 `runs/query` with its tree filter, pages of up to 1,000) and not yet deleted.
    let (mut found, mut deleted, mut ahead) = (0usize, 0usize, 0usize);
    for x in sim.sim.exchanges().iter() {
        let request = x.request.as_ref();
        match x.path.as_str() {
            "/api/v2/runs/query" if request.is_some_and(|r| r.get("tree_filter").is_some()) => {
                found += x.response.as_ref().unwrap()["items"].as_array().unwrap().len()
            }
            "/api/v1/runs/delete" => deleted += request.unwrap()["trace_ids"].as_array().unwrap().len(),
            _ => {}
        }
        ahead = ahead.max(found.saturating_sub(deleted));
    }
    assert_eq!(deleted, 5000);
    assert!(
        found >= 5000,
        "the selector's pages were read from the log ({found} traces)"
    );
    assert!(
        ahead <= 2000,
        "the query ran {ahead} trace ids ahead of the deletes (bound 1000, and a page)"
    );
}

/// (expected DLQ reason, payload, extra headers)
type BadCase = (&'static str, Vec<u8>, Vec<(&'static str, &'static str)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_input_lands_in_the_dlq_while_good_events_flow() {
    let world = World::new(simulator(), 1).await;
    let s = world.sessions(1)[0];
    let t = Uuid::new_v4();
    let good = |i: usize| json!({"request_id": format!("good-{i}"), "targets": [{"session_id": s, "trace_ids": [t]}]});
    let ce = |data: Value| {
        serde_json::to_vec(
            &json!({"specversion": "1.0", "id": "x", "source": "urn:t", "type": "erasure.requested.v1", "data": data}),
        )
        .unwrap()
    };
    let bad: Vec<BadCase> = vec![
        ("malformed_json", b"{\"specversion\": \"1.0\", ".to_vec(), vec![]),
        (
            "invalid_envelope",
            br#"{"specversion":"0.3","id":"x","source":"s","type":"erasure.requested.v1","data":{}}"#.to_vec(),
            vec![],
        ),
        ("invalid_envelope", ce(good(0)), vec![("content-type", "text/plain")]),
        (
            "schema_violation",
            ce(json!({"request_id": "r", "targets": [], "email": "a@b.c"})),
            vec![],
        ),
        (
            "invalid_id",
            ce(json!({"request_id": "r", "targets": [{"session_id": s, "trace_ids": ["nope"]}]})),
            vec![],
        ),
        ("empty_request", ce(json!({"request_id": "r", "targets": []})), vec![]),
        (
            "too_many_ids",
            ce(
                json!({"request_id": "r", "targets": [{"session_id": s, "trace_ids": (0..101).map(|_| Uuid::new_v4()).collect::<Vec<_>>()}]}),
            ),
            vec![],
        ),
        (
            "unsafe_metadata",
            ce(json!({"request_id": "r", "targets": [{"metadata": {"k": "a\u{0}b"}}]})),
            vec![],
        ),
        (
            "unknown_workspace",
            ce(json!({"request_id": "r", "workspace": "elsewhere", "targets": [{"metadata": {"k": "v"}}]})),
            vec![],
        ),
    ];
    for (i, (_, payload, headers)) in bad.iter().enumerate() {
        world.publish(good(i)).await;
        let mut hs: Vec<(&str, &str)> = headers.clone();
        hs.push(("trace", "keep-me"));
        world.publish_raw(Some(&format!("bad-{i}")), payload, &hs).await;
    }
    world.publish(good(99)).await;
    let config = world.config("[intake]\nlinger = \"200ms\"\nmax_ids_per_request = 100\n");
    let (stop, handle) = world.start(config);
    let n = bad.len();
    let outs = world
        .collect(Duration::from_secs(60), |o| {
            o.iter().filter(|x| x.topic == "dlq").count() >= n
                && o.iter().filter(|x| x.topic == "requested").count() > 0
                && {
                    let ids: HashSet<String> = data_of(o, "requested")
                        .iter()
                        .map(|d| d["request_id"].to_string())
                        .collect();
                    ids.len() == n + 1
                }
        })
        .await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    let dlq: Vec<&Out> = outs.iter().filter(|o| o.topic == "dlq").collect();
    assert_eq!(dlq.len(), n);
    for (i, (reason, payload, _)) in bad.iter().enumerate() {
        let d = dlq
            .iter()
            .find(|o| o.key.as_deref() == Some(&format!("bad-{i}")))
            .expect("dead-lettered");
        assert_eq!(
            d.headers.get("dlq_reason").map(String::as_str),
            Some(*reason),
            "bad-{i}"
        );
        assert_eq!(&d.payload, payload, "original bytes untouched");
        assert_eq!(
            d.headers.get("trace").map(String::as_str),
            Some("keep-me"),
            "original headers kept"
        );
        assert!(d.headers.contains_key("dlq_detail") && d.headers.contains_key("dlq_offset"));
        assert!(
            !d.headers["dlq_detail"].contains("a@b.c"),
            "no personal data in the reason"
        );
    }
}
