//! Dataset examples through a self-hosted API URL (`…/api/v1`): found by all of a selector's
//! pairs, hard-deleted under `/api/v1/platform`, read back without data; a hard delete of examples
//! that no longer exist is nothing left to erase; one LangSmith chokes on fails alone; examples made
//! from traces are found by their source trace or run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{paths, setup};
use crate::event::FailReason;

/// Adds the example `e` to the simulator's only workspace.
fn add_example(sim: &langsmith_sim::Sim, e: serde_json::Value) -> Uuid {
    let ws = *sim.state().workspaces.keys().next().unwrap();
    sim.state().add_example(ws, serde_json::from_value(e).unwrap()).unwrap()
}

/// Several selectors' searches in one: each is told the examples whose metadata holds all its own
/// pairs (an example holding two selectors' goes to both); one call where there were four.
#[tokio::test]
async fn selectors_searched_together_are_each_told_their_own_examples() {
    let s = setup();
    let add = |e: serde_json::Value| add_example(&s.sim, e);
    let dataset = Uuid::new_v4();
    let a = add(json!({"dataset_id": dataset, "inputs": {"q": "a"}, "metadata": {"user_id": "a"}}));
    let ab = add(json!({"dataset_id": dataset, "inputs": {"q": "b"}, "metadata": {"user_id": "a", "org": "o"}}));
    let b = add(json!({"dataset_id": dataset, "inputs": {"q": "c"}, "metadata": {"user_id": "b", "org": "o"}}));
    add(json!({"dataset_id": dataset, "inputs": {"q": "d"}, "metadata": {"user_id": "c"}}));
    let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let sets = [
        set(&[("user_id", "a")]),
        set(&[("org", "o"), ("user_id", "a")]),
        set(&[("user_id", "b")]),
        set(&[("user_id", "nobody")]),
    ];
    let before = s.sim.counters().calls_to(&["GET /examples"]);
    let found = s.api.examples_holding(&sets, Utc::now()).await.unwrap().unwrap();
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };
    let want = [sorted(vec![a, ab]), vec![ab], vec![b], vec![]];
    assert_eq!(found.into_iter().map(|(ids, _)| sorted(ids)).collect::<Vec<_>>(), want);
    assert_eq!(s.sim.counters().calls_to(&["GET /examples"]) - before, 1);
}

#[tokio::test]
async fn a_selectors_examples_are_found_hard_deleted_and_read_back_empty() {
    let s = setup();
    let add = |e: serde_json::Value| add_example(&s.sim, e);
    let dataset = Uuid::new_v4();
    let both = add(json!({"dataset_id": dataset, "inputs": {"q": "a"}, "metadata": {"user_id": "u-1", "org": "o"}}));
    let one = add(json!({"dataset_id": dataset, "inputs": {"q": "b"}, "metadata": {"user_id": "u-1"}}));
    let pairs = BTreeMap::from([
        ("user_id".to_owned(), "u-1".to_owned()),
        ("org".to_owned(), "o".to_owned()),
    ]);
    let found = s.api.examples_holding(&[pairs], Utc::now()).await.unwrap();
    assert_eq!(found, Some(vec![(vec![both], false)]), "every pair must hold, not any");

    let ids = [both, one];
    assert_eq!(
        s.api.examples_holding_data(&ids).await.unwrap(),
        BTreeSet::from(ids).into_iter().collect()
    );
    assert!(s.api.hard_delete_examples(&ids).await.is_empty());
    assert!(
        s.api.examples_holding_data(&ids).await.unwrap().is_empty(),
        "nulled at once"
    );
    let gone = s.api.hard_delete_examples(&[Uuid::new_v4()]).await;
    assert!(gone.is_empty(), "a 404: nothing left to erase");
    let platform = paths(&s.sim)
        .iter()
        .filter(|(p, _, _)| p == "/api/v1/platform/datasets/examples/delete")
        .count();
    assert_eq!(platform, 2, "{:?}", paths(&s.sim));
}

#[tokio::test]
async fn an_example_langsmith_chokes_on_fails_alone_and_the_rest_are_erased() {
    let s = setup();
    let ids: Vec<Uuid> = (0..30)
        .map(|i| add_example(&s.sim, json!({"dataset_id": Uuid::new_v4(), "inputs": {"q": i}})))
        .collect();
    s.sim.behaviour().poisoned_examples = vec![ids[11]];
    // Other calls get answers meanwhile: the server is up (with none, nothing would be split).
    let healthy = async {
        for _ in 0..20 {
            s.api.hard_delete_examples(&[Uuid::new_v4()]).await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (refused, ()) = tokio::join!(s.api.hard_delete_examples(&ids), healthy);
    assert_eq!(refused.keys().collect::<Vec<_>>(), [&ids[11]]);
    assert_eq!(refused[&ids[11]].reason, FailReason::RejectedByApi);
    let held = s.api.examples_holding_data(&ids).await.unwrap();
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        [ids[11]],
        "every other one erased"
    );
}

#[tokio::test]
async fn examples_made_from_runs_are_listed_with_their_sources() {
    let s = setup();
    let (trace, run) = (Uuid::new_v4(), Uuid::new_v4());
    let add = |e: serde_json::Value| add_example(&s.sim, e);
    let dataset = Uuid::new_v4();
    for i in 0..150 {
        add(json!({"dataset_id": dataset, "inputs": {"q": i}}));
    }
    let from_trace = add(json!({"dataset_id": dataset, "inputs": {}, "source_trace_id": trace}));
    let from_run = add(json!({"dataset_id": dataset, "inputs": {}, "source_run_id": run}));
    let found = s.api.examples_made_from_runs(Utc::now()).await.unwrap();
    let found: Vec<_> = found
        .iter()
        .map(|e| (e.id, e.source_trace_id, e.source_run_id))
        .collect();
    assert_eq!(
        found,
        [(from_trace, Some(trace), None), (from_run, None, Some(run))],
        "past the first page"
    );
}
