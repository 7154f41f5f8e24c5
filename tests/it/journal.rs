//! The resolution journal: a selector request whose replica dies between its deletes and their
//! events is replayed after the deletion window ran, and a fresh search finds nothing (the traces
//! are gone, the example is nulled); the journal still makes the replay name every trace and
//! example erased. And a run whose search misses traces another run deleted meanwhile names them,
//! from that run's record.

use std::collections::BTreeSet;
use std::time::Duration;

use erasure_worker::intake::journal::{self, Entry};
use erasure_worker::publish::{Publisher, Record};
use langsmith_sim::faults::{Class, FaultSpec};
use serde_json::{from_value, json, Value};
use uuid::Uuid;

use crate::support::{private_simulator, wait_for};
use crate::world::{data_of, Out, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_replayed_after_its_deletes_took_effect_still_names_every_id_erased() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let mut traces = BTreeSet::new();
    for s in world.sessions(2) {
        let gen = json!({"session_id": s, "traces": 3, "return_ids": true,
                         "metadata": [{"key": "user_id", "prefix": "j", "distinct": 1}]});
        traces.extend(
            world
                .sim
                .state()
                .generate(world.ws, from_value(gen).unwrap())
                .unwrap()
                .1,
        );
    }
    let example = json!({"dataset_id": Uuid::new_v4(), "inputs": {"q": "x"}, "metadata": {"user_id": "j0"}});
    let example = world
        .sim
        .state()
        .add_example(world.ws, from_value(example).unwrap())
        .unwrap();
    // Every delete is carried out, and its answer lost: the first run never publishes its events.
    let lost = FaultSpec {
        error_ratio: 1.0,
        after_handling: true,
        ..FaultSpec::default()
    };
    sim.sim.faults().set(Class::Delete, lost);
    world
        .publish(json!({"request_id": "r-j", "targets": [{"metadata": {"user_id": "j0"}}]}))
        .await;
    // A short session, so that the killed replica's partition is given to the next one soon.
    let extra = "[intake]\nlinger = \"100ms\"\n[retry]\nbase = \"50ms\"\nmax = \"200ms\"\n\
                 [kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"\n";
    let mut first = world.spawn_worker(extra, "first", "intake");
    wait_for("every trace's delete carried out", Duration::from_secs(60), || {
        let deleted: BTreeSet<Uuid> = world.sim.delete_calls(world.ws).into_iter().flat_map(|c| c.1).collect();
        deleted == traces
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let (before, _) = world.collect_until(Duration::from_secs(2), |_| false).await;
    assert!(data_of(&before, "requested").is_empty(), "no delete was answered");
    let erased_before = examples_erased(&before, example);

    // The window runs before the restart: a fresh search finds none of it now.
    assert_eq!(world.sim.run_window().applied_traces, traces.len() as u64);
    sim.sim.faults().set(Class::Delete, FaultSpec::default());
    let mut second = world.spawn_worker(extra, "second", "all");
    let outs = world
        .collect(Duration::from_secs(60), |o| {
            named(o, "verified") == traces && examples_erased(o, example) > erased_before
        })
        .await;
    second.terminate();
    assert_eq!(
        named(&outs, "requested"),
        traces,
        "the replay requested every trace again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_another_run_deleted_during_the_search_are_named_from_its_record() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let gen = json!({"session_id": session, "traces": 3, "return_ids": true,
                     "metadata": [{"key": "user_id", "prefix": "j", "distinct": 1}]});
    let traces: BTreeSet<Uuid> = world
        .sim
        .state()
        .generate(world.ws, from_value(gen).unwrap())
        .unwrap()
        .1
        .into_iter()
        .collect();
    // The selector's query is answered 2 s after it arrives: the other run acts meanwhile.
    let slow = FaultSpec {
        latency_ms: 2000,
        ..FaultSpec::default()
    };
    sim.sim.faults().set(Class::QueryV2, slow);
    world
        .publish(json!({"request_id": "r-j", "targets": [{"metadata": {"user_id": "j0"}}]}))
        .await;
    let (stop, intake) = world.start(world.config("[intake]\nlinger = \"100ms\"\n"));
    wait_for("the selector's query", Duration::from_secs(30), || {
        let received = sim.sim.counters().received.clone();
        received.iter().any(|(e, n)| e.ends_with("/runs/query") && *n > 0)
    })
    .await;
    // Another run of the event (a replica still working on the partition it lost) records the
    // traces, deletes them, and the window runs, all before the query is answered.
    let entry = Entry {
        request_id: "r-j".into(),
        run: Uuid::new_v4(),
        target: Some(0),
        traces: [(session, traces.clone())].into(),
        ..Entry::default()
    };
    let (key, payload) = (
        journal::key(&world.topic("requests"), 0, 0),
        serde_json::to_vec(&entry).unwrap(),
    );
    let publisher = Publisher::new(erasure_worker::kafka::client_config(&world.bootstrap)).unwrap();
    let record = Record {
        topic: &world.topic("resolutions"),
        key: Some(key.as_bytes()),
        payload: &payload,
        headers: Vec::new(),
        partition: Some(0),
    };
    publisher.send(record).await.expect("recorded");
    {
        let mut state = world.sim.state();
        let ws = state.workspaces.get_mut(&world.ws).unwrap();
        assert!(
            traces.iter().all(|t| ws.remove_trace(session, *t)),
            "the other run's deletes took effect"
        );
    }
    let outs = world
        .collect(Duration::from_secs(30), |o| named(o, "requested") == traces)
        .await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    let verified = data_of(&outs, "verified");
    assert!(
        verified.iter().all(|d| d["request_id"] != "r-j"),
        "no `nothing found`: {verified:?}"
    );
}

/// The trace ids named by `topic`'s events of `r-j`.
fn named(outs: &[Out], topic: &str) -> BTreeSet<Uuid> {
    let of_request = data_of(outs, topic).into_iter().filter(|d| d["request_id"] == "r-j");
    let ids = of_request.flat_map(|d| from_value::<Vec<Uuid>>(d["trace_ids"].clone()).unwrap_or_default());
    ids.collect()
}

/// How many `erasure.examples.erased.v1` events name `example`.
fn examples_erased(outs: &[Out], example: Uuid) -> usize {
    let erased = outs.iter().filter(|o| o.topic == "examples").map(Out::json);
    let names = |v: &Value| v["type"] == "erasure.examples.erased.v1" && v["data"]["example_ids"] == json!([example]);
    erased.filter(names).count()
}
