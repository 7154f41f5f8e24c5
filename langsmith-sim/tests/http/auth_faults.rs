use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Env, KEY};

#[tokio::test]
async fn keys_and_tenant_headers_select_the_workspace() {
    let env = Env::start().await;
    let (status, answer) = env.call(Method::GET, "/sessions", None, Value::Null).await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Invalid token"}))
    );
    let (status, _) = env
        .call(Method::POST, "/api/v1/runs/query", Some("lsv2_pt_wrong"), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A personal key serves one workspace: binding it to a second one is refused, clearly.
    let (status, refused) = env
        .call(
            Method::POST,
            "/_sim/workspaces",
            None,
            json!({"name": "two", "api_keys": [KEY]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["error"].as_str().unwrap().contains("already bound"),
        "{refused}"
    );
    assert!(!refused.to_string().contains(KEY), "the error does not echo the key");

    // An org-scoped service key reaches two workspaces and must name one.
    let body = json!({"name": "two", "org_scoped_keys": ["lsv2_sk_org"]});
    let (_, second) = env.admin(Method::POST, "/_sim/workspaces", body).await;
    let body = json!({"name": "three", "org_scoped_keys": ["lsv2_sk_org"]});
    let (_, third) = env.admin(Method::POST, "/_sim/workspaces", body).await;
    let url = format!("/_sim/workspaces/{}/load", second["id"].as_str().unwrap());
    env.admin(Method::POST, &url, json!({"sessions": [{"name": "only-in-two"}]}))
        .await;

    let list = |key: &'static str, tenant: Option<String>| {
        let mut req = env.http.get(format!("{}/sessions", env.base)).header("x-api-key", key);
        if let Some(t) = tenant {
            req = req.header("X-Tenant-Id", t);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (_, default) = list(KEY, None).await;
    assert_eq!(default, json!([]), "no tenant header: the key's workspace");
    let (status, _) = list(KEY, Some(second["id"].as_str().unwrap().into())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a workspace the key cannot reach");
    let (status, _) = list(KEY, Some(Uuid::new_v4().to_string())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = list("lsv2_sk_org", None).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::FORBIDDEN,
            json!({"error": "org_scoped_key_requires_workspace"})
        )
    );
    let (status, two) = list("lsv2_sk_org", Some(second["id"].as_str().unwrap().into())).await;
    assert_eq!((status, two[0]["name"].clone()), (StatusCode::OK, json!("only-in-two")));
    let (status, _) = list("lsv2_sk_org", Some(third["id"].as_str().unwrap().into())).await;
    assert_eq!(status, StatusCode::OK);
}

async fn delete_once(env: &Env) -> reqwest::Response {
    let body = json!({"session_id": Uuid::new_v4(), "trace_ids": [Uuid::new_v4()]});
    env.http
        .post(format!("{}/runs/delete", env.base))
        .header("x-api-key", env.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limits_answer_429_with_or_without_retry_after() {
    let env = Env::start().await;
    let limit = json!({"rate_limit": {"requests": 2, "window_ms": 60000, "retry_after": true}});
    env.admin(Method::PUT, "/_sim/faults/delete", limit).await;
    assert_eq!(delete_once(&env).await.status(), StatusCode::ACCEPTED);
    assert_eq!(delete_once(&env).await.status(), StatusCode::ACCEPTED);
    let limited = delete_once(&env).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.json::<Value>().await.unwrap()["detail"].is_string());

    let plain = json!({"rate_limit": {"requests": 1, "window_ms": 60000, "retry_after": false, "plain_body": true}});
    env.admin(Method::PUT, "/_sim/faults/delete", plain).await;
    assert_eq!(delete_once(&env).await.status(), StatusCode::ACCEPTED);
    let limited = delete_once(&env).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get("retry-after").is_none());
    assert_eq!(limited.text().await.unwrap(), "Too Many Requests");

    let c = env.counters().await;
    assert_eq!(c["rate_limited"], 2);
    assert_eq!(c["calls"]["POST /runs/delete"]["429"], 2);
    assert_eq!(c["delete_calls_accepted"], 3, "a 429 queues nothing");
}

#[tokio::test]
async fn documented_limits_are_on_by_default() {
    // A simulator as the binary starts it: v1 runs/query allows 15 requests per 10 s per key.
    let sim = langsmith_sim::Sim::new(1);
    sim.state()
        .create_workspace(serde_json::from_value(json!({"api_keys": [KEY]})).unwrap())
        .unwrap();
    let base = format!("http://{}", sim.clone().spawn().await.unwrap());
    let http = reqwest::Client::new();
    // v1 runs/query is rated by shape per workspace: 10 per 10 s over at most 7 days, 3 per 10 s
    // without a start time (or over more than 7 days); and 15 per 10 s per key, refused ones included.
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(2)).to_rfc3339();
    let mut statuses = Vec::new();
    for (body, n) in [(json!({"start_time": recent}), 11), (json!({}), 4), (json!({}), 1)] {
        for _ in 0..n {
            let resp = http
                .post(format!("{base}/runs/query"))
                .header("x-api-key", KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            statuses.push((resp.status(), resp.headers().contains_key("retry-after")));
        }
    }
    let ok = |s: &[(StatusCode, bool)]| s.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok(&statuses[..11]), 10, "narrow tier: {statuses:?}");
    assert_eq!(ok(&statuses[11..15]), 3, "wide tier: {statuses:?}");
    assert_eq!(
        statuses[15],
        (StatusCode::TOO_MANY_REQUESTS, false),
        "the key's 16th request in 10 s; no Retry-After, as LangSmith documents none"
    );
    assert_eq!(sim.counters().rate_limited, 3);

    let env = Env::start().await;
    let (_, all) = env.admin(Method::GET, "/_sim/faults", Value::Null).await;
    assert!(
        all.as_object().unwrap().values().all(|s| s["rate_limit"].is_null()),
        "Env clears them: {all}"
    );
}

#[tokio::test]
async fn injected_errors_and_latency() {
    let env = Env::start().await;
    env.admin(
        Method::PUT,
        "/_sim/faults/query",
        json!({"error_ratio": 1.0, "error_status": 502}),
    )
    .await;
    let (status, _) = env.api(Method::POST, "/runs/query", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    env.admin(Method::PUT, "/_sim/faults/query", json!({"error_ratio": 0.5}))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..200 {
        statuses.push(env.api(Method::POST, "/runs/query", json!({})).await.0);
    }
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!((60..140).contains(&failed), "{failed} of 200 failed at ratio 0.5");
    assert_eq!(failed + statuses.iter().filter(|s| s.is_success()).count(), 200);

    env.admin(Method::PUT, "/_sim/faults/sessions", json!({"latency_ms": 150}))
        .await;
    let t = Instant::now();
    assert_eq!(env.api(Method::GET, "/sessions", Value::Null).await.0, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(150));
    let (status, _) = env
        .call(Method::PUT, "/_sim/faults/query", None, json!({"error_ratio": 2.0}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_periodic_window_applies_queued_deletes_by_itself() {
    let env = Env::start().await;
    let (session, ids) = env.session_with_traces("p", 1).await;
    env.api(
        Method::POST,
        "/runs/delete",
        json!({"session_id": session, "trace_ids": ids}),
    )
    .await;
    env.admin(Method::PUT, "/_sim/window", json!({"mode": "every", "seconds": 0.2}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = env.api(Method::GET, &format!("/runs/{}", ids[0]), Value::Null).await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the periodic window never applied the delete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(env.counters().await["windows_run"].as_u64().unwrap() >= 1);
    let (_, weekly) = env
        .admin(
            Method::PUT,
            "/_sim/window",
            json!({"mode": "weekly", "day": "saturday", "time": "02:00"}),
        )
        .await;
    assert_eq!(weekly["mode"], "weekly");
    let (status, _) = env
        .call(
            Method::PUT,
            "/_sim/window",
            None,
            json!({"mode": "weekly", "day": "x", "time": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
