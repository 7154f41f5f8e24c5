//! Dataset examples: a selector's request hard-deletes the examples whose metadata holds its pairs
//! (every version nulled), reads them back and says so in `erasure.examples.erased.v1`; a refused
//! search ends in `erasure.examples.failed.v1`; a workspace that keeps its examples is not searched,
//! but examples a request names by id are erased there too.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::schemas::validator;
use crate::support::private_simulator;
use crate::world::{data_of, Out, World};

/// Examples of the subject `u-1` in two datasets (one with an earlier version), and one of `u-2`.
fn load_examples(world: &World) -> (Vec<Uuid>, Uuid) {
    let [d1, d2] = [Uuid::new_v4(), Uuid::new_v4()];
    let mut state = world.sim.state();
    let mut add = |e: Value| state.add_example(world.ws, serde_json::from_value(e).unwrap()).unwrap();
    let first = add(json!({
        "dataset_id": d1,
        "inputs": {"question": "what did Jane ask?"},
        "outputs": {"answer": "a secret"},
        "metadata": {"user_id": "u-1", "channel": "chat"},
        "history": [{"at": "2026-01-01T00:00:00Z", "inputs": {"question": "older"}, "outputs": null,
                     "metadata": {"user_id": "u-1"}}],
    }));
    let second = add(json!({"dataset_id": d2, "inputs": {"q": "x"}, "metadata": {"user_id": "u-1"}}));
    let other = add(json!({"dataset_id": d1, "inputs": {"q": "y"}, "metadata": {"user_id": "u-2"}}));
    (vec![first, second], other)
}

fn selector_request(id: &str) -> Value {
    json!({"request_id": id, "targets": [{"metadata": {"user_id": "u-1"}}]})
}

/// Runs the intake with `extra` config over `request` until `done` holds for its events.
async fn run(world: &World, extra: &str, request: Value, done: impl FnMut(&[Out]) -> bool) -> Vec<Out> {
    let config = format!("[intake]\nlinger = \"100ms\"\n[retry]\nbase = \"20ms\"\nmax = \"100ms\"\n{extra}");
    let (stop, intake) = world.start(world.config(&config));
    world.publish(request).await;
    let outs = world.collect(Duration::from_secs(60), done).await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    outs
}

fn example_ids(d: &Value) -> Vec<Uuid> {
    serde_json::from_value(d["example_ids"].clone()).unwrap()
}

/// Whether the simulator still holds inputs, outputs or metadata of `id` in any version.
pub fn holds_data(world: &World, id: Uuid) -> bool {
    let state = world.sim.state();
    let e = state.workspaces[&world.ws]
        .examples
        .iter()
        .find(|e| e.id == id)
        .unwrap();
    e.versions
        .iter()
        .any(|v| v.inputs.is_some() || v.outputs.is_some() || v.metadata.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_erases_the_examples_holding_its_pairs_in_every_version() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let (subject, other) = load_examples(&world);
    let outs = run(&world, "", selector_request("r-ex"), |o| {
        !data_of(o, "examples").is_empty()
    })
    .await;
    let events: Vec<Value> = outs.iter().filter(|o| o.topic == "examples").map(Out::json).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "erasure.examples.erased.v1");
    let data = &events[0]["data"];
    assert!(validator("erasure.examples.erased.v1").is_valid(data), "{data}");
    let mut named = example_ids(data);
    named.sort();
    let mut want = subject.clone();
    want.sort();
    assert_eq!(named, want, "both of the subject's examples, not the other person's");
    for id in subject {
        assert!(!holds_data(&world, id), "{id}: every version nulled");
    }
    assert!(holds_data(&world, other), "the other person's example is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_search_fails_a_kept_workspace_is_not_searched_and_named_examples_go_anyway() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let (subject, _) = load_examples(&world);
    let forbidden = json!({"error_ratio": 1.0, "error_status": 403});
    sim.sim.faults().set(
        serde_json::from_value(json!("examples")).unwrap(),
        serde_json::from_value(forbidden).unwrap(),
    );
    let outs = run(&world, "", selector_request("r-refused"), |o| {
        !data_of(o, "examples").is_empty()
    })
    .await;
    sim.sim.clear_faults();
    let event = outs.iter().find(|o| o.topic == "examples").map(Out::json).unwrap();
    assert_eq!(event["type"], "erasure.examples.failed.v1");
    let data = &event["data"];
    assert!(validator("erasure.examples.failed.v1").is_valid(data), "{data}");
    assert_eq!(data["reason"], "forbidden");
    assert!(
        example_ids(data).is_empty(),
        "the search was refused: no example is named"
    );

    // With `erase_examples = false`, the request ends (its selector found no trace) without a
    // search: the examples keep their data.
    let keep = "[workspaces.main]\nerase_examples = false\n";
    let ended = |o: &[Out]| data_of(o, "verified").iter().any(|d| d["request_id"] == "r-kept");
    let outs = run(&world, keep, selector_request("r-kept"), ended).await;
    let kept = data_of(&outs, "examples");
    assert!(
        kept.iter().all(|d| d["request_id"] != "r-kept"),
        "no examples event: {kept:?}"
    );
    assert!(subject.iter().all(|id| holds_data(&world, *id)));

    // Named by id, in the same workspace: erased; one LangSmith does not hold is named as gone.
    let unknown = Uuid::new_v4();
    let named = json!({"request_id": "r-named", "targets": [{"example_ids": [subject[0], unknown]}]});
    let of_named = |o: &[Out]| {
        data_of(o, "examples")
            .into_iter()
            .find(|d| d["request_id"] == "r-named")
    };
    let outs = run(&world, keep, named, |o| of_named(o).is_some()).await;
    let mut erased = example_ids(&of_named(&outs).unwrap());
    erased.sort();
    let mut want = vec![subject[0], unknown];
    want.sort();
    assert_eq!(erased, want);
    assert!(!holds_data(&world, subject[0]) && holds_data(&world, subject[1]));
}
