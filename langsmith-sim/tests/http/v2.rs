use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::{ids_of, Env};

#[tokio::test]
async fn traces_query_fast_path_defaults_to_the_last_24_hours() {
    let env = Env::start().await;
    let loaded = env.load(json!({"sessions": [{"name": "p"}]})).await;
    let session = loaded["sessions"][0].clone();
    let (old, fresh, missing) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    env.load(json!({"runs": [
        {"id": old, "session_id": session, "start_time": two_days_ago},
        {"id": fresh, "session_id": session},
    ]}))
    .await;
    let body = json!({"project_id": session, "trace_ids": [old, fresh, missing], "page_size": 1});
    let (status, page) = env.api(Method::POST, "/v2/traces/query", body).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let roots: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["root_run"]["id"].clone())
        .collect();
    assert_eq!(
        roots,
        vec![json!(fresh)],
        "the two-day-old trace is outside the default window"
    );
    assert!(page["next_cursor"].is_null());

    let body = json!({"project_id": session, "trace_ids": [old, fresh], "min_start_time": "2000-01-01T00:00:00Z",
                      "page_size": 1, "selects": ["START_TIME", "TRACE_ID"]});
    let (_, first) = env.api(Method::POST, "/v2/traces/query", body.clone()).await;
    assert_eq!(first["items"][0]["root_run"]["trace_id"], json!(fresh));
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let mut next = body.clone();
    next["cursor"] = json!(cursor);
    let (_, second) = env.api(Method::POST, "/v2/traces/query", next).await;
    assert_eq!(second["items"][0]["root_run"]["id"], json!(old));
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn v2_validation_uses_problem_details() {
    let env = Env::start().await;
    let cases = [
        ("/v2/traces/query", json!({"trace_ids": [Uuid::new_v4()]})),
        (
            "/v2/traces/query",
            json!({"project_id": Uuid::new_v4(), "page_size": 101}),
        ),
        ("/v2/runs/query", json!({"ids": [Uuid::new_v4()]})),
        (
            "/v2/runs/query",
            json!({"project_ids": [Uuid::new_v4()], "page_size": 1001}),
        ),
        (
            "/v2/runs/query",
            json!({"project_ids": [Uuid::new_v4()], "selects": ["nope"]}),
        ),
    ];
    for (path, body) in cases {
        let (status, answer) = env.api(Method::POST, path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {answer}");
        assert_eq!(answer["status"], 422);
        assert!(answer["title"].is_string() && answer["detail"].is_string(), "{answer}");
    }
    let (status, answer) = env
        .call(
            Method::POST,
            "/v2/runs/query",
            Some("wrong"),
            json!({"project_ids": [Uuid::new_v4()]}),
        )
        .await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::UNAUTHORIZED, json!(401))
    );
}

#[tokio::test]
async fn runs_query_selects_and_narrows_by_ids() {
    let env = Env::start().await;
    let (session, ids) = env.session_with_traces("p", 5).await;
    let body = json!({"project_ids": [session], "ids": [ids[0], ids[2]], "selects": ["NAME", "METADATA", "RUN_TYPE"]});
    let (status, page) = env.api(Method::POST, "/v2/runs/query", body).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids_of(&page["items"], "id"), vec![ids[2], ids[0]], "newest first");
    assert_eq!(page["items"][0]["metadata"]["user_id"], "u2");
    assert_eq!(page["items"][0]["run_type"], "CHAIN");
    let (_, page) = env
        .api(
            Method::POST,
            "/v2/runs/query",
            json!({"project_ids": [session], "page_size": 2}),
        )
        .await;
    assert_eq!(page["items"][0].as_object().unwrap().len(), 1, "only the id by default");
    assert!(page["next_cursor"].is_string());
}

/// `tree_filter` keeps a run whose trace holds a matching run anywhere, root or child;
/// `trace_filter` looks at the root run only; both in v1 and v2 `runs/query`.
#[tokio::test]
async fn tree_filters_look_at_every_run_of_a_trace_and_trace_filters_at_the_root() {
    let env = Env::start().await;
    let loaded = env.load(json!({"sessions": [{"name": "p"}]})).await;
    let session = loaded["sessions"][0].clone();
    let (in_child, in_root, neither) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let child = |trace: Uuid, metadata| json!({"trace_id": trace, "parent_run_id": trace, "session_id": session, "metadata": metadata});
    env.load(json!({"runs": [
        {"id": in_child, "session_id": session}, child(in_child, json!({"user_id": "u-1"})),
        {"id": in_root, "session_id": session, "metadata": {"user_id": "u-1"}}, child(in_root, json!({})),
        {"id": neither, "session_id": session}, child(neither, json!({"user_id": "u-2"})),
    ]}))
    .await;
    let expr = r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "u-1"))"#;
    for (field, mut want) in [
        ("tree_filter", vec![in_child, in_root]),
        ("trace_filter", vec![in_root]),
    ] {
        want.sort();
        let v2 =
            json!({"project_ids": [session], "is_root": true, field: expr, "min_start_time": "2000-01-01T00:00:00Z"});
        let v1 = json!({"session": [session], "is_root": true, field: expr});
        for (path, body, rows) in [("/v2/runs/query", v2, "items"), ("/api/v1/runs/query", v1, "runs")] {
            let (status, page) = env.api(Method::POST, path, body).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let mut got = ids_of(&page[rows], "id");
            got.sort();
            assert_eq!(got, want, "{path} {field}");
        }
    }
}

/// Generated traces with a `children_only` pair hold it in their child runs alone: a tree filter
/// finds them, a filter on root runs does not.
#[tokio::test]
async fn generated_pairs_can_sit_in_child_runs_only() {
    let env = Env::start().await;
    let loaded = env.load(json!({"sessions": [{"name": "p"}]})).await;
    let session = loaded["sessions"][0].clone();
    let metadata = json!([{"key": "user_id", "prefix": "kid-", "distinct": 1, "children_only": true}]);
    let gen = json!({"session_id": session, "traces": 3, "runs_per_trace": 2, "metadata": metadata});
    env.admin(Method::POST, &format!("/_sim/workspaces/{}/generate", env.ws), gen)
        .await;
    let expr = r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "kid-0"))"#;
    let count = |field: &str| {
        let body = json!({"session": [session], "is_root": true, field: expr});
        let env = &env;
        async move {
            let (status, page) = env.api(Method::POST, "/api/v1/runs/query", body).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["runs"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("tree_filter").await, 3);
    assert_eq!(count("filter").await, 0);
}
