//! Behaviours the live service is documented to have beyond the published spec: both v2 prefixes
//! (each switchable), v2's tenant requirement, the exclusive `max_start_time`, per-project 403s
//! (attribute-based access control), deprecation headers, and the exchange recorder.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Env, KEY};

async fn project_with_trace(env: &Env, start: &str) -> (Value, Uuid) {
    let loaded = env.load(json!({"sessions": [{"name": "p"}]})).await;
    let session = loaded["sessions"][0].clone();
    let trace = Uuid::new_v4();
    env.load(json!({"runs": [{"id": trace, "session_id": session, "start_time": start}]}))
        .await;
    (session, trace)
}

#[tokio::test]
async fn v2_answers_under_both_prefixes_and_each_can_be_turned_off() {
    let env = Env::start().await;
    let (session, trace) = project_with_trace(&env, "2026-01-01T00:00:00Z").await;
    let body = json!({"project_id": session, "trace_ids": [trace], "min_start_time": "2025-01-01T00:00:00Z"});
    for path in ["/api/v2/traces/query", "/v2/traces/query"] {
        let (status, page) = env.api(Method::POST, path, body.clone()).await;
        assert_eq!(
            (status, page["items"][0]["root_run"]["id"].clone()),
            (StatusCode::OK, json!(trace)),
            "{path}"
        );
    }
    let off = json!({"serve_api_v2": false});
    env.admin(Method::PUT, "/_sim/behaviour", off).await;
    assert_eq!(
        env.api(Method::POST, "/api/v2/traces/query", body.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.api(Method::POST, "/v2/traces/query", body.clone()).await.0,
        StatusCode::OK
    );
    let off = json!({"serve_bare_v2": false});
    env.admin(Method::PUT, "/_sim/behaviour", off).await;
    assert_eq!(
        env.api(Method::POST, "/api/v2/runs/query", json!({"project_ids": [session]}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        env.api(Method::POST, "/v2/runs/query", json!({"project_ids": [session]}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn v2_needs_the_tenant_unless_the_key_has_one_workspace() {
    let env = Env::start().await;
    let body = json!({"name": "org", "org_scoped_keys": ["lsv2_sk_two"]});
    let (_, one) = env.admin(Method::POST, "/_sim/workspaces", body.clone()).await;
    let body = json!({"name": "org2", "org_scoped_keys": ["lsv2_sk_two"]});
    env.admin(Method::POST, "/_sim/workspaces", body).await;
    let query = |key: &'static str, tenant: Option<String>| {
        let mut req = env
            .http
            .post(format!("{}/api/v2/runs/query", env.base))
            .header("x-api-key", key)
            .json(&json!({"project_ids": [Uuid::new_v4()]}));
        if let Some(t) = tenant {
            req = req.header("x-tenant-id", t);
        }
        async move { req.send().await.unwrap() }
    };
    assert_eq!(
        query(KEY, None).await.status(),
        StatusCode::OK,
        "a key of one workspace implies it"
    );
    let refused = query("lsv2_sk_two", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 403, "RFC 7807 shape: {problem}");
    let tenant = one["id"].as_str().unwrap().to_owned();
    assert_eq!(query("lsv2_sk_two", Some(tenant)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn v2_max_start_time_is_exclusive() {
    let env = Env::start().await;
    let (session, trace) = project_with_trace(&env, "2026-01-01T00:00:00Z").await;
    let query = |max: &str| json!({"project_id": session, "trace_ids": [trace], "min_start_time": "2026-01-01T00:00:00Z", "max_start_time": max});
    let (_, at) = env
        .api(Method::POST, "/api/v2/traces/query", query("2026-01-01T00:00:00Z"))
        .await;
    assert_eq!(at["items"], json!([]), "a trace starting at max_start_time is outside");
    let (_, after) = env
        .api(
            Method::POST,
            "/api/v2/traces/query",
            query("2026-01-01T00:00:00.000001Z"),
        )
        .await;
    assert_eq!(
        after["items"][0]["root_run"]["id"],
        json!(trace),
        "min_start_time is inclusive"
    );
}

#[tokio::test]
async fn a_forbidden_project_answers_403_to_its_deletes_and_queries_only() {
    let env = Env::start().await;
    let (denied, trace) = project_with_trace(&env, "2026-01-01T00:00:00Z").await;
    let (allowed, other) = project_with_trace(&env, "2026-01-01T00:00:00Z").await;
    env.admin(Method::PUT, "/_sim/behaviour", json!({"forbidden_projects": [denied]}))
        .await;
    let calls = [
        (
            "/api/v1/runs/delete",
            json!({"session_id": denied, "trace_ids": [trace]}),
        ),
        ("/api/v1/runs/query", json!({"session": [denied]})),
        ("/api/v1/runs/query", json!({"id": [trace]})),
        (
            "/api/v2/traces/query",
            json!({"project_id": denied, "trace_ids": [trace]}),
        ),
        ("/api/v2/runs/query", json!({"project_ids": [denied, allowed]})),
    ];
    for (path, body) in calls {
        assert_eq!(
            env.api(Method::POST, path, body.clone()).await.0,
            StatusCode::FORBIDDEN,
            "{path} {body}"
        );
    }
    let fine = [
        (
            "/api/v1/runs/delete",
            json!({"session_id": allowed, "trace_ids": [other]}),
        ),
        ("/api/v1/runs/query", json!({"id": [other]})),
        (
            "/api/v2/traces/query",
            json!({"project_id": allowed, "trace_ids": [other]}),
        ),
    ];
    for (path, body) in fine {
        assert!(
            env.api(Method::POST, path, body.clone()).await.0.is_success(),
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn deprecation_headers_and_recorded_exchanges_are_switches() {
    let env = Env::start().await;
    let query = || {
        env.http
            .post(format!("{}/api/v1/runs/query", env.base))
            .header("x-api-key", KEY)
            .json(&json!({}))
    };
    assert!(query().send().await.unwrap().headers().get("deprecation").is_none());
    let on = json!({"deprecation_headers": true, "record_exchanges": true});
    env.admin(Method::PUT, "/_sim/behaviour", on).await;
    let resp = query().header("x-tenant-id", env.ws.to_string()).send().await.unwrap();
    assert_eq!(resp.headers()["deprecation"], "true");
    assert!(resp.headers()["sunset"].to_str().unwrap().contains("2027"));
    let (_, recorded) = env.admin(Method::GET, "/_sim/exchanges", Value::Null).await;
    let one = &recorded[0];
    assert_eq!(
        (one["method"].clone(), one["path"].clone()),
        (json!("POST"), json!("/api/v1/runs/query"))
    );
    assert_eq!(
        (one["tenant"].clone(), one["request"].clone(), one["status"].clone()),
        (json!(true), json!({}), json!(200))
    );
    assert!(one["response"]["runs"].is_array());
}
