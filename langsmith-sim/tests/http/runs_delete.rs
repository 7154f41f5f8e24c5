use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::Env;

#[tokio::test]
async fn deletes_are_queued_until_the_window_runs() {
    let env = Env::start().await;
    let (session, ids) = env.session_with_traces("p", 3).await;
    let unknown = Uuid::new_v4();
    let body = json!({"session_id": session, "trace_ids": [ids[0], ids[1], unknown]});
    let (status, answer) = env.api(Method::POST, "/api/v1/runs/delete", body).await;
    assert_eq!(
        (status, answer),
        (StatusCode::ACCEPTED, json!({"message": "Run deletes queued"}))
    );
    let (status, _) = env
        .api(Method::GET, &format!("/api/v1/runs/{}", ids[0]), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "still readable before the window");

    let (_, report) = env.admin(Method::POST, "/_sim/window/run", Value::Null).await;
    assert_eq!(report, json!({"applied_traces": 2, "skipped_traces": 0}));
    for (id, want) in [
        (ids[0], StatusCode::NOT_FOUND),
        (ids[1], StatusCode::NOT_FOUND),
        (ids[2], StatusCode::OK),
    ] {
        assert_eq!(env.api(Method::GET, &format!("/runs/{id}"), Value::Null).await.0, want);
    }
    let c = env.counters().await;
    assert_eq!(
        (c["queued_traces"].as_u64(), c["applied_traces"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(c["delete_ids_max"], 3);
    assert_eq!(c["calls"]["POST /runs/delete"]["202"], 1);
    assert_eq!(
        env.sim.delete_calls(env.ws),
        vec![(session, vec![ids[0], ids[1], unknown])]
    );
    let (_, log) = env
        .admin(
            Method::GET,
            &format!("/_sim/workspaces/{}/deletes", env.ws),
            Value::Null,
        )
        .await;
    assert_eq!(
        log,
        json!([{"session_id": session, "trace_ids": [ids[0], ids[1], unknown]}])
    );
}

#[tokio::test]
async fn the_same_seed_generates_the_same_traces() {
    let (a, b) = (Env::start().await, Env::start().await);
    assert_eq!(a.ws, b.ws, "workspace ids come from the seed");
    assert_eq!(
        a.session_with_traces("p", 50).await,
        b.session_with_traces("p", 50).await
    );
}

#[tokio::test]
async fn a_delete_in_the_wrong_session_removes_nothing() {
    let env = Env::start().await;
    let (_, ids) = env.session_with_traces("a", 1).await;
    let (other, _) = env.session_with_traces("b", 1).await;
    let (status, _) = env
        .api(
            Method::POST,
            "/runs/delete",
            json!({"session_id": other, "trace_ids": ids}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, report) = env.admin(Method::POST, "/_sim/window/run", Value::Null).await;
    assert_eq!(report["applied_traces"], 0);
}

#[tokio::test]
async fn child_runs_go_with_their_trace() {
    let env = Env::start().await;
    let loaded = env.load(json!({"sessions": [{"name": "p"}]})).await;
    let session = &loaded["sessions"][0];
    let (root, child) = (Uuid::new_v4(), Uuid::new_v4());
    env.load(json!({"runs": [
        {"id": root, "session_id": session},
        {"id": child, "trace_id": root, "parent_run_id": root, "session_id": session, "run_type": "llm"},
    ]}))
    .await;
    env.api(
        Method::POST,
        "/runs/delete",
        json!({"session_id": session, "trace_ids": [root]}),
    )
    .await;
    env.admin(Method::POST, "/_sim/window/run", Value::Null).await;
    assert_eq!(
        env.api(Method::GET, &format!("/runs/{child}"), Value::Null).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_bodies_get_fastapi_shaped_errors() {
    let env = Env::start().await;
    let session = Uuid::new_v4();
    let too_many: Vec<Uuid> = (0..1001).map(|_| Uuid::new_v4()).collect();
    let cases = [
        (
            json!({"session_id": session, "trace_ids": ["not-a-uuid"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"session_id": "nope", "trace_ids": [Uuid::new_v4()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"trace_ids": [Uuid::new_v4()]}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"session_id": session, "trace_ids": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"session_id": session, "trace_ids": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"session_id": session, "trace_ids": [session], "metadata": {"k": "v"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"session_id": session, "trace_ids": too_many}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, want) in cases {
        let (status, answer) = env.api(Method::POST, "/api/v1/runs/delete", body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
        if want == StatusCode::UNPROCESSABLE_ENTITY {
            let item = &answer["detail"][0];
            assert!(
                item["loc"].is_array() && item["msg"].is_string() && item["type"].is_string(),
                "{answer}"
            );
        } else {
            assert!(answer["detail"].is_string(), "{answer}");
        }
    }
    let raw = env
        .http
        .post(format!("{}/runs/delete", env.base))
        .header("x-api-key", env.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        env.counters().await["delete_calls_accepted"],
        0,
        "rejected calls queue nothing"
    );
}

#[tokio::test]
async fn oversize_status_and_success_variant_are_switchable() {
    let env = Env::start().await;
    let body = json!({"delete_answers_202": false, "bulk_deletes_enabled": true, "oversize_status": 422});
    env.admin(Method::PUT, "/_sim/behaviour", body).await;
    let (session, ids) = env.session_with_traces("p", 1).await;
    let (status, answer) = env
        .api(
            Method::POST,
            "/runs/delete",
            json!({"session_id": session, "trace_ids": ids}),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
    let too_many: Vec<Uuid> = (0..1001).map(|_| Uuid::new_v4()).collect();
    let (status, _) = env
        .api(
            Method::POST,
            "/runs/delete",
            json!({"session_id": session, "trace_ids": too_many}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn metadata_deletes_match_any_pair_and_can_be_forbidden() {
    let env = Env::start().await;
    let (_, ids) = env.session_with_traces("p", 5).await;
    let body = json!({"metadata": {"user_id": "u1", "other": "u3"}, "start_time": "2000-01-01T00:00:00Z"});
    let (status, _) = env.api(Method::POST, "/runs/delete", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, report) = env.admin(Method::POST, "/_sim/window/run", Value::Null).await;
    assert_eq!(report["applied_traces"], 1);
    assert_eq!(
        env.api(Method::GET, &format!("/runs/{}", ids[1]), Value::Null).await.0,
        StatusCode::NOT_FOUND
    );

    env.admin(Method::PUT, "/_sim/behaviour", json!({"bulk_deletes_enabled": false}))
        .await;
    let (status, answer) = env.api(Method::POST, "/runs/delete", body).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "bulk run deletes are not enabled"})
        )
    );
}

#[tokio::test]
async fn never_deleted_ids_and_sessions_stay() {
    let env = Env::start().await;
    let (s1, a) = env.session_with_traces("a", 2).await;
    let (s2, b) = env.session_with_traces("b", 1).await;
    env.admin(Method::PUT, "/_sim/never", json!({"traces": [a[0]], "sessions": [s2]}))
        .await;
    env.api(Method::POST, "/runs/delete", json!({"session_id": s1, "trace_ids": a}))
        .await;
    env.api(Method::POST, "/runs/delete", json!({"session_id": s2, "trace_ids": b}))
        .await;
    let (_, report) = env.admin(Method::POST, "/_sim/window/run", Value::Null).await;
    assert_eq!(report, json!({"applied_traces": 1, "skipped_traces": 2}));
    assert_eq!(
        env.api(Method::GET, &format!("/runs/{}", a[0]), Value::Null).await.0,
        StatusCode::OK
    );
    assert_eq!(
        env.api(Method::GET, &format!("/runs/{}", b[0]), Value::Null).await.0,
        StatusCode::OK
    );
}
