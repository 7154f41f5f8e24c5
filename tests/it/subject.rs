//! Everything LangSmith holds about one subject, erased by one request and proven: traces whose
//! root run or child run holds the subject's pairs, and the dataset examples of two datasets, made
//! from those traces or carrying the pairs themselves. Requests naming a trace by id erase the
//! examples made from it too, whether their event is resolved in a task or in line.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use langsmith_sim::window::Schedule;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::examples::holds_data;
use crate::support::private_simulator;
use crate::world::{data_of, Out, World};

const CONFIG: &str = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n";

/// The ids `field` names in the `topic` events of `request`.
fn named(outs: &[Out], topic: &str, request: &str, field: &str) -> BTreeSet<Uuid> {
    (data_of(outs, topic).iter())
        .filter(|d| d["request_id"] == request)
        .flat_map(|d| serde_json::from_value::<Vec<Uuid>>(d[field].clone()).unwrap())
        .collect()
}

/// A trace of a root run and a child run with this metadata; its root's id and its child's.
fn trace(world: &World, session: Uuid, root: Value, child: Value) -> (Uuid, Uuid) {
    let (root_id, child_id) = (Uuid::new_v4(), Uuid::new_v4());
    let runs = [
        json!({"id": root_id, "session_id": session, "metadata": root}),
        json!({"id": child_id, "trace_id": root_id, "parent_run_id": root_id, "session_id": session,
               "metadata": child}),
    ];
    for run in runs {
        world
            .sim
            .state()
            .add_run(world.ws, serde_json::from_value(run).unwrap())
            .unwrap();
    }
    (root_id, child_id)
}

fn example(world: &World, e: Value) -> Uuid {
    let new = serde_json::from_value(e).unwrap();
    world.sim.state().add_example(world.ws, new).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trace_and_example_of_a_subject_is_erased_named_and_proven_gone() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let subject = json!({"user_id": "u-7"});
    let (in_root, _) = trace(&world, session, subject.clone(), json!({}));
    let (in_child, child) = trace(&world, session, json!({"tenant": "t"}), subject.clone());
    let (named_trace, _) = trace(&world, session, json!({}), json!({}));
    let (named_later, _) = trace(&world, session, json!({}), json!({}));
    let (someone_else, _) = trace(&world, session, json!({"user_id": "u-8"}), json!({}));
    let [d1, d2] = [Uuid::new_v4(), Uuid::new_v4()];
    let from_root = example(
        &world,
        json!({"dataset_id": d1, "inputs": {"q": "Jane's question"},
        "source_run_id": in_root, "source_trace_id": in_root, "source_session_id": session}),
    );
    let from_child = example(
        &world,
        json!({"dataset_id": d2, "inputs": {"q": "Jane's follow-up"},
        "source_run_id": child, "source_trace_id": in_child, "source_session_id": session}),
    );
    let carrying = example(
        &world,
        json!({"dataset_id": d2, "inputs": {"q": "x"}, "metadata": subject,
        "history": [{"at": "2026-01-01T00:00:00Z", "inputs": {"q": "older"}, "metadata": subject}]}),
    );
    let from_named = example(
        &world,
        json!({"dataset_id": d1, "inputs": {"q": "y"},
        "source_trace_id": named_trace, "source_session_id": session}),
    );
    let from_later = example(
        &world,
        json!({"dataset_id": d2, "inputs": {"q": "w"}, "source_run_id": named_later}),
    );
    let kept = example(
        &world,
        json!({"dataset_id": d1, "inputs": {"q": "z"}, "source_trace_id": someone_else}),
    );

    let traces = BTreeMap::from([
        ("subject", BTreeSet::from([in_root, in_child])),
        ("by-id", BTreeSet::from([named_trace])),
        ("by-id-later", BTreeSet::from([named_later])),
    ]);
    let examples = BTreeMap::from([
        ("subject", BTreeSet::from([from_root, from_child, carrying])),
        ("by-id", BTreeSet::from([from_named])),
        ("by-id-later", BTreeSet::from([from_later])),
    ]);
    let by_id = |request: &str, trace: Uuid| json!({"request_id": request, "targets": [{"session_name": "project-0", "trace_ids": [trace]}]});
    let config = world.config(CONFIG);
    let (stop_intake, intake) = world.start(config.clone());
    let (stop_verifier, verifier) = world.start_verifier(config);
    let ended = |o: &[Out], requests: &[&str]| {
        (requests.iter()).all(|r| {
            named(o, "verified", r, "trace_ids").is_superset(&traces[r])
                && named(o, "examples", r, "example_ids").is_superset(&examples[r])
        })
    };
    let subject_request = json!({"request_id": "subject", "targets": [{"metadata": {"user_id": "u-7"}}]});
    world
        .publish_many(&[subject_request, by_id("by-id", named_trace)])
        .await;
    let (_, finished) = (world.collect_until(Duration::from_secs(120), |o| ended(o, &["subject", "by-id"]))).await;
    assert!(finished, "the first two requests end");
    // The project's lookup is cached now: this request is resolved in line, its examples in a task.
    world.publish(by_id("by-id-later", named_later)).await;
    let (outs, finished) = world
        .collect_until(Duration::from_secs(120), |o| {
            ended(o, &traces.keys().copied().collect::<Vec<_>>())
        })
        .await;
    let events: Vec<Value> = outs.iter().map(Out::json).collect();
    assert!(finished, "not every id named after 120 s: {events:#?}");
    stop_intake.send(()).unwrap();
    stop_verifier.send(()).unwrap();
    intake.await.unwrap().unwrap();
    verifier.await.unwrap().unwrap();

    assert_eq!(data_of(&outs, "failed"), Vec::<Value>::new());
    assert_eq!(data_of(&outs, "dlq"), Vec::<Value>::new());
    for (request, want) in &traces {
        assert_eq!(
            &named(&outs, "verified", request, "trace_ids"),
            want,
            "{request}: traces verified"
        );
        assert_eq!(
            &named(&outs, "examples", request, "example_ids"),
            &examples[request],
            "{request}: examples"
        );
    }
    let erased = data_of(&outs, "examples");
    assert!(
        erased.iter().all(|d| d["reason"].is_null()),
        "erased, none failed: {erased:?}"
    );
    let state = world.sim.state();
    for gone in [in_root, in_child, named_trace, named_later] {
        assert!(
            !state.workspaces[&world.ws].traces.contains_key(&gone),
            "trace {gone} gone"
        );
    }
    assert!(state.workspaces[&world.ws].traces.contains_key(&someone_else));
    drop(state);
    for id in examples.values().flatten() {
        assert!(!holds_data(&world, *id), "example {id}: every version nulled");
    }
    assert!(
        holds_data(&world, kept),
        "an example made from someone else's trace stays"
    );
}
