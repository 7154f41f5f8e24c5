//! Dataset examples through a self-hosted API URL (`…/api/v1`): found by all of a selector's
//! pairs, hard-deleted under `/api/v1/platform`, read back without data; a hard delete of examples
//! that no longer exist is nothing left to erase.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{paths, setup};

#[tokio::test]
async fn a_selectors_examples_are_found_hard_deleted_and_read_back_empty() {
    let s = setup();
    let ws = *s.sim.state().workspaces.keys().next().unwrap();
    let add = |e: serde_json::Value| {
        s.sim
            .state()
            .add_example(ws, serde_json::from_value(e).unwrap())
            .unwrap()
    };
    let dataset = Uuid::new_v4();
    let both = add(json!({"dataset_id": dataset, "inputs": {"q": "a"}, "metadata": {"user_id": "u-1", "org": "o"}}));
    let one = add(json!({"dataset_id": dataset, "inputs": {"q": "b"}, "metadata": {"user_id": "u-1"}}));
    let pairs = BTreeMap::from([
        ("user_id".to_owned(), "u-1".to_owned()),
        ("org".to_owned(), "o".to_owned()),
    ]);
    let (found, more) = s.api.examples_with(&pairs, Utc::now()).await.unwrap();
    assert_eq!(
        (found.clone(), more),
        (vec![both], false),
        "every pair must hold, not any"
    );

    let ids = [both, one];
    assert_eq!(
        s.api.examples_holding_data(&ids).await.unwrap(),
        BTreeSet::from(ids).into_iter().collect()
    );
    s.api.hard_delete_examples(&ids).await.unwrap();
    assert!(
        s.api.examples_holding_data(&ids).await.unwrap().is_empty(),
        "nulled at once"
    );
    s.api
        .hard_delete_examples(&[Uuid::new_v4()])
        .await
        .expect("a 404: nothing left to erase");
    let platform = paths(&s.sim)
        .iter()
        .filter(|(p, _, _)| p == "/api/v1/platform/datasets/examples/delete")
        .count();
    assert_eq!(platform, 2, "{:?}", paths(&s.sim));
}
