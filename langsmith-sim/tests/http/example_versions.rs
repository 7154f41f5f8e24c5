//! Example versions: `as_of` reads the dataset's history, a soft delete leaves it there, a hard
//! delete nulls every version; `filter` selects by metadata (`has`, `exists`) and id.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ids_of, urlencode, Env};

#[tokio::test]
async fn as_of_reads_history_a_soft_delete_keeps_it_and_a_hard_delete_nulls_every_version() {
    let env = Env::start().await;
    let (soft, hard) = (Uuid::new_v4(), Uuid::new_v4());
    let example = |id: Uuid| {
        json!({"id": id, "dataset_id": Uuid::new_v4(), "inputs": {"q": "now"}, "metadata": {"user_id": "u-2"},
               "modified_at": "2026-02-01T00:00:00Z",
               "history": [{"at": "2026-01-01T00:00:00Z", "inputs": {"q": "then"}, "metadata": {"user_id": "u-1"}}]})
    };
    env.load(json!({"examples": [example(soft), example(hard)]})).await;
    let get = |query: String| {
        let env = &env;
        async move {
            env.api(Method::GET, &format!("/api/v1/examples?{query}"), Value::Null)
                .await
                .1
        }
    };
    let then = get(format!("id={soft}&as_of={}", urlencode("2026-01-15T00:00:00Z"))).await;
    assert_eq!(
        (then[0]["inputs"].clone(), then[0]["metadata"].clone()),
        (json!({"q": "then"}), json!({"user_id": "u-1"}))
    );
    assert_eq!(
        get(format!("id={soft}&as_of={}", urlencode("2025-12-31T00:00:00Z"))).await,
        json!([]),
        "not created yet"
    );
    assert_eq!(
        get(format!("id={soft}")).await[0]["inputs"],
        json!({"q": "now"}),
        "latest"
    );

    let (status, _) = env
        .api(
            Method::DELETE,
            &format!("/api/v1/examples?example_ids={soft}"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        get(format!("id={soft}")).await,
        json!([]),
        "gone from the latest version"
    );
    let then = get(format!("id={soft}&as_of={}", urlencode("2026-01-15T00:00:00Z"))).await;
    assert_eq!(
        then[0]["inputs"],
        json!({"q": "then"}),
        "a soft delete keeps the history"
    );

    let body = json!({"example_ids": [hard], "hard_delete": true});
    let (status, _) = env
        .api(Method::POST, "/v1/platform/datasets/examples/delete", body)
        .await;
    assert_eq!(status, StatusCode::OK);
    for at in ["2026-01-15T00:00:00Z", "2026-02-15T00:00:00Z"] {
        let v = get(format!("id={hard}&as_of={}", urlencode(at))).await;
        assert_eq!(
            (v[0]["inputs"].clone(), v[0]["metadata"].clone()),
            (json!({}), Value::Null),
            "{at}"
        );
    }
}

#[tokio::test]
async fn examples_filter_by_metadata_pairs_keys_and_ids() {
    let env = Env::start().await;
    let dataset = Uuid::new_v4();
    let ex = |metadata: Value| json!({"dataset_id": dataset, "metadata": metadata});
    let loaded = env
        .load(json!({"examples": [
            ex(json!({"user_id": "u-1", "tenant": "t"})), ex(json!({"user_id": "u-1"})), ex(json!({"tenant": "t", "n": 5})),
        ]}))
        .await;
    let ids: Vec<Uuid> = serde_json::from_value(loaded["examples"].clone()).unwrap();
    let found = |filter: &str| {
        let path = format!("/api/v1/examples?filter={}", urlencode(filter));
        let env = &env;
        async move {
            let (status, page) = env.api(Method::GET, &path, Value::Null).await;
            (
                status,
                if status == StatusCode::OK {
                    ids_of(&page, "id")
                } else {
                    vec![]
                },
            )
        }
    };
    let ok = |v: Vec<Uuid>| (StatusCode::OK, v);
    assert_eq!(
        found(r#"has(metadata, '{"user_id": "u-1", "tenant": "t"}')"#).await,
        ok(vec![ids[0]]),
        "every pair"
    );
    assert_eq!(
        found(r#"has(metadata, '{"n": 5}')"#).await,
        ok(vec![ids[2]]),
        "JSON values"
    );
    assert_eq!(found(r#"exists(metadata, "tenant")"#).await, ok(vec![ids[0], ids[2]]));
    let not = r#"and(not(has(metadata, '{"tenant": "t"}')), exists(metadata, "user_id"))"#;
    assert_eq!(found(not).await, ok(vec![ids[1]]));
    assert_eq!(
        found(&format!(r#"in(id, ["{}", "{}"])"#, ids[1], ids[2])).await,
        ok(vec![ids[1], ids[2]])
    );
    assert_eq!(
        found(r#"eurlencode(name, "x")"#).await.0,
        StatusCode::BAD_REQUEST,
        "a field examples lack"
    );
    assert_eq!(found("has(metadata,").await.0, StatusCode::BAD_REQUEST);
}
