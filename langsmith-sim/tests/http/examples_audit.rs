use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ids_of, urlencode, Env};

#[tokio::test]
async fn examples_match_any_metadata_pair_and_hard_delete_nulls_them() {
    let env = Env::start().await;
    let dataset = Uuid::new_v4();
    let loaded = env
        .load(json!({"examples": [
            {"dataset_id": dataset, "metadata": {"user_id": "alice"}, "inputs": {"q": "hi"}},
            {"dataset_id": dataset, "metadata": {"owner": "bob"}},
            {"dataset_id": Uuid::new_v4(), "metadata": {"user_id": "carol"}},
        ]}))
        .await;
    let ids: Vec<Uuid> = loaded["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect();
    let meta = urlencode(r#"{"user_id":"alice","owner":"bob"}"#);
    let (status, found) = env
        .api(Method::GET, &format!("/api/v1/examples?metadata={meta}"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids_of(&found, "id"), vec![ids[0], ids[1]]);
    let (_, found) = env
        .api(
            Method::GET,
            &format!("/examples?dataset={dataset}&limit=1&offset=1"),
            Value::Null,
        )
        .await;
    assert_eq!(ids_of(&found, "id"), vec![ids[1]]);
    let (status, _) = env
        .api(Method::GET, "/examples?metadata=%7Bnot-json", Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let path = "/v1/platform/datasets/examples/delete";
    let (status, answer) = env
        .api(
            Method::POST,
            path,
            json!({"example_ids": [ids[0]], "hard_delete": true}),
        )
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"count": 1, "example_ids": [ids[0]]}))
    );
    let (_, after) = env
        .api(Method::GET, &format!("/examples?id={}", ids[0]), Value::Null)
        .await;
    // Nulled inputs read as `{}`: the spec's `Example.inputs` is a required object.
    assert_eq!(
        (after[0]["inputs"].clone(), after[0]["metadata"].clone()),
        (json!({}), Value::Null)
    );
    assert_eq!(
        after[0]["dataset_id"],
        json!(dataset),
        "id, dataset and creation time stay"
    );

    let many: Vec<String> = (0..1001).map(|_| Uuid::new_v4().to_string()).collect();
    for body in [
        json!({"example_ids": [ids[1]], "hard_delete": false}),
        json!({"example_ids": [], "hard_delete": true}),
        json!({"example_ids": many, "hard_delete": true}),
        json!({"example_ids": ["nope"], "hard_delete": true}),
        json!({"example_ids": [ids[1]]}),
    ] {
        let (status, answer) = env
            .api(Method::POST, "/api/v1/platform/datasets/examples/delete", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, _) = env
        .api(
            Method::POST,
            path,
            json!({"example_ids": [Uuid::new_v4()], "hard_delete": true}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `select` names the fields LangSmith's `ExampleSelect` allows; the answer holds those, and the
/// fields the spec's `Example` requires.
#[tokio::test]
async fn examples_answer_the_fields_selected() {
    let env = Env::start().await;
    let (dataset, trace) = (Uuid::new_v4(), Uuid::new_v4());
    let example = json!({"dataset_id": dataset, "inputs": {"q": "hi"}, "source_trace_id": trace});
    env.load(json!({"examples": [example]})).await;
    let path = "/api/v1/examples?select=id&select=source_trace_id&select=source_run_id";
    let (status, found) = env.api(Method::GET, path, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let fields: Vec<&String> = found[0].as_object().unwrap().keys().collect();
    let want = ["dataset_id", "id", "inputs", "name", "source_run_id", "source_trace_id"];
    assert_eq!(fields, want, "what is selected, and what the spec's `Example` requires");
    assert_eq!(found[0]["source_trace_id"], json!(trace));
    let (status, _) = env
        .api(Method::GET, "/api/v1/examples?select=source_trace", Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not an ExampleSelect");
}

#[tokio::test]
async fn audit_logs_record_accepted_deletes_for_the_organization() {
    let env = Env::start().await;
    let (session, ids) = env.session_with_traces("p", 2).await;
    env.api(
        Method::POST,
        "/runs/delete",
        json!({"session_id": session, "trace_ids": ids}),
    )
    .await;
    let org = env.sim.state().workspaces[&env.ws].org_id;
    let window = "start_time=2000-01-01T00:00:00Z&end_time=2100-01-01T00:00:00Z";
    let get = |path: String, org: Option<Uuid>| {
        let mut req = env.http.get(format!("{}{path}", env.base)).header("x-api-key", env.key);
        if let Some(o) = org {
            req = req.header("X-Organization-Id", o.to_string());
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, logs) = get(format!("/api/v1/audit-logs?{window}&operations=delete_runs"), Some(org)).await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let item = &logs["items"][0];
    assert_eq!(
        (item["class_uid"].clone(), item["api"]["operation"].clone()),
        (json!(6003), json!("delete_runs"))
    );
    assert_eq!(item["unmapped"]["original_audit_log"]["workspace_id"], json!(env.ws));
    assert_eq!(item["resources"].as_array().unwrap().len(), 2);
    assert!(logs["cursor"].is_null());
    assert_eq!(
        get(format!("/api/v1/audit-logs?{window}"), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(format!("/api/v1/audit-logs?{window}"), Some(Uuid::new_v4()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, missing) = get("/api/v1/audit-logs?start_time=2000-01-01T00:00:00Z".into(), Some(org)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing["detail"][0]["loc"], json!(["query", "end_time"]));
    let (_, none) = get(
        format!("/api/v1/audit-logs?{window}&operations=delete_examples"),
        Some(org),
    )
    .await;
    assert_eq!(none["items"], json!([]));
}
