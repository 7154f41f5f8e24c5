use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ids_of, Env};

#[tokio::test]
async fn sessions_by_name_substring_and_offset() {
    let env = Env::start().await;
    let names = ["chat-prod", "chat-dev", "batch"];
    let sessions: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"name": n, "start_time": format!("2026-0{}-01T00:00:00Z", i + 1)}))
        .collect();
    let loaded = env.load(json!({"sessions": sessions})).await;
    let (status, found) = env
        .api(
            Method::GET,
            "/api/v1/sessions?name=chat-dev&limit=1&include_stats=false",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], loaded["sessions"][1]);
    assert_eq!(found[0]["tenant_id"], json!(env.ws));
    let (_, found) = env.api(Method::GET, "/sessions?name_contains=chat", Value::Null).await;
    assert_eq!(found.as_array().unwrap().len(), 2);
    let (_, page) = env.api(Method::GET, "/sessions?offset=1&limit=1", Value::Null).await;
    assert_eq!(page[0]["name"], "chat-dev", "newest first, then offset");
    let (_, none) = env.api(Method::GET, "/sessions?name=absent", Value::Null).await;
    assert_eq!(none, json!([]));
    let (status, answer) = env.api(Method::GET, "/sessions?limit=101", Value::Null).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["detail"][0]["loc"], json!(["query", "limit"]));
    let id = loaded["sessions"][0].as_str().unwrap();
    let (_, one) = env
        .api(Method::GET, &format!("/sessions/{id}?include_stats=true"), Value::Null)
        .await;
    assert_eq!(
        (one["name"].clone(), one["run_count"].clone()),
        (json!("chat-prod"), json!(0))
    );
    let (status, _) = env
        .api(
            Method::GET,
            &format!("/api/v1/sessions/{}", Uuid::new_v4()),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, by_id) = env
        .api(
            Method::GET,
            &format!("/sessions?id={id}&id={}", loaded["sessions"][2].as_str().unwrap()),
            Value::Null,
        )
        .await;
    assert_eq!(ids_of(&by_id, "id").len(), 2);
}

#[tokio::test]
async fn read_run_returns_the_run_schema() {
    let env = Env::start().await;
    let (session, ids) = env.session_with_traces("p", 1).await;
    let (status, run) = env
        .api(Method::GET, &format!("/api/v1/runs/{}", ids[0]), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        "name",
        "run_type",
        "trace_id",
        "dotted_order",
        "id",
        "status",
        "session_id",
        "app_path",
    ] {
        assert!(!run[field].is_null(), "RunSchema requires {field}: {run}");
    }
    assert_eq!(run["session_id"], json!(session));
    let (status, _) = env.api(Method::GET, "/runs/not-a-uuid", Value::Null).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
