//! The client against the simulator (a library here): what one workspace's client does with a
//! project LangSmith forbids, a missing tenant, a missing v2 prefix, a deprecated endpoint, and a
//! trace named with the wrong project.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use langsmith_sim::Sim;
use serde_json::json;
use uuid::Uuid;

use super::LangSmith;
use crate::config::{Limits, QueryApi, RetryConfig, Secret, WorkspaceConfig};
use crate::event::FailReason;
use crate::metrics::Metrics;

mod discovery;
mod examples;
mod together;

pub(super) struct Setup {
    pub(super) sim: Arc<Sim>,
    pub(super) api: LangSmith,
    pub(super) metrics: Arc<Metrics>,
    pub(super) session: Uuid,
    pub(super) traces: Vec<Uuid>,
}

/// A simulator without rate limits, one workspace with one project of two traces, and a client
/// with no tenant configured.
pub(super) fn setup() -> Setup {
    let sim = Sim::new(3);
    sim.clear_faults();
    let key = format!("lsv2_pt_{}", Uuid::new_v4().simple());
    let ws = sim
        .state()
        .create_workspace(serde_json::from_value(json!({"api_keys": [key]})).unwrap())
        .unwrap();
    let session = sim
        .state()
        .add_session(ws, serde_json::from_value(json!({"name": "p"})).unwrap())
        .unwrap();
    let gen = json!({"session_id": session, "traces": 2, "return_ids": true});
    let (_, traces) = sim.state().generate(ws, serde_json::from_value(gen).unwrap()).unwrap();
    sim.behaviour().record_exchanges = true;
    let addr = sim.clone().spawn_on_thread().unwrap();
    let mut api = client(format!("http://{addr}/api/v1/"), key);
    let metrics = Arc::new(Metrics::new());
    api.metrics = Some(metrics.clone());
    Setup {
        sim,
        api,
        metrics,
        session,
        traces,
    }
}

pub(super) fn paths(sim: &Sim) -> Vec<(String, u16, bool)> {
    sim.exchanges()
        .iter()
        .map(|x| (x.path.clone(), x.status, x.tenant))
        .collect()
}

#[tokio::test]
async fn a_project_langsmith_forbids_fails_after_three_tries_and_the_workspace_stays_healthy() {
    let s = setup();
    s.sim.behaviour().forbidden_projects = vec![s.session];
    let refused = s.api.delete_all(s.session, &s.traces).await;
    assert_eq!(refused.len(), 2, "every id of the batch, without bisecting");
    assert!(refused.values().all(|r| r.reason == FailReason::Forbidden));
    assert!(s.api.healthy(), "one project's 403 does not break the workspace");
    let deletes: Vec<_> = paths(&s.sim)
        .into_iter()
        .filter(|p| p.0.ends_with("/runs/delete"))
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
}

#[tokio::test]
async fn the_tenant_is_learnt_once_and_then_sent_on_every_call() {
    let s = setup();
    let since = Utc::now() - TimeDelta::days(1);
    for _ in 0..2 {
        let left = s
            .api
            .remaining(QueryApi::V2, s.session, &s.traces, since)
            .await
            .unwrap();
        assert_eq!(left.ids.len(), 2);
    }
    s.api.delete(s.session, &s.traces, None).await;
    let calls = paths(&s.sim);
    assert_eq!(
        calls[0],
        ("/api/v1/sessions".into(), 200, false),
        "learnt first: {calls:?}"
    );
    assert!(calls[1..].iter().all(|c| c.2), "then sent on every call: {calls:?}");
    assert_eq!(calls.iter().filter(|c| c.0 == "/api/v1/sessions").count(), 1);
    assert_eq!(s.metrics.tenant_learnt.get(), 1);
}

#[tokio::test]
async fn a_missing_api_v2_falls_back_to_v2_once_and_remembers() {
    let s = setup();
    s.sim.behaviour().serve_api_v2 = false;
    let since = Utc::now() - TimeDelta::days(1);
    for _ in 0..3 {
        let left = s
            .api
            .remaining(QueryApi::V2, s.session, &s.traces, since)
            .await
            .unwrap();
        assert_eq!(left.ids.len(), 2, "found through /v2");
    }
    let v2: Vec<_> = paths(&s.sim).into_iter().filter(|p| p.0.contains("v2/")).collect();
    assert_eq!(v2[0], ("/api/v2/traces/query".into(), 404, true));
    assert!(
        v2[1..].iter().all(|p| p.0 == "/v2/traces/query" && p.1 == 200),
        "{v2:?}"
    );
    let gauge = s.metrics.v2_prefix.with_label_values(&["main", "/v2"]).get();
    assert_eq!(gauge, 1);
}

#[tokio::test]
async fn answers_from_a_deprecated_endpoint_are_counted() {
    let s = setup();
    s.sim.behaviour().deprecation_headers = true;
    let expr = super::filter::metadata_all([("user_id", "nobody")]);
    for _ in 0..2 {
        let session = [s.session];
        let roots = s.api.root_traces(
            QueryApi::V1,
            session[..].into(),
            discovery::search(&expr, Utc::now() - TimeDelta::days(1), None),
        );
        assert_eq!(discovery::every_page(roots).await, (vec![], vec![]));
    }
    let counted = s.metrics.deprecated_answers.with_label_values(&["query"]).get();
    assert_eq!(counted, 2, "every answer counts (the log says it once)");
}

#[tokio::test]
async fn a_trace_in_another_project_is_found_in_both_modes_and_a_refused_look_finds_nothing() {
    let s = setup();
    let ws = *s.sim.state().workspaces.keys().next().unwrap();
    let other = s
        .sim
        .state()
        .add_session(ws, serde_json::from_value(json!({"name": "q"})).unwrap())
        .unwrap();
    let gen = json!({"session_id": other, "traces": 1, "return_ids": true});
    let (_, elsewhere) = s
        .sim
        .state()
        .generate(ws, serde_json::from_value(gen).unwrap())
        .unwrap();
    let since = Utc::now() - TimeDelta::days(1);
    let v2_queries = |sim: &Sim| paths(sim).iter().filter(|p| p.0.ends_with("v2/runs/query")).count();

    let all_here = s
        .api
        .misplaced(QueryApi::V2, s.session, &s.traces, since)
        .await
        .unwrap();
    assert_eq!(all_here, Vec::<Uuid>::new());
    assert_eq!(v2_queries(&s.sim), 1, "the common case costs one query");

    let mut named = s.traces.clone();
    named.extend([elsewhere[0], Uuid::new_v4()]);
    for api in [QueryApi::V2, QueryApi::V1] {
        let found = s.api.misplaced(api, s.session, &named, since).await.unwrap();
        assert_eq!(
            found, elsewhere,
            "{api:?}: the id in the other project, not the one nowhere"
        );
    }
    // LangSmith refuses the look into the other project: the ids are taken as nowhere, not failed.
    s.sim.behaviour().forbidden_projects = vec![other];
    let found = s.api.misplaced(QueryApi::V2, s.session, &named, since).await.unwrap();
    assert_eq!(found, Vec::<Uuid>::new());
}

/// Serves `router` on a free loopback port in the background.
async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn client_of(addr: std::net::SocketAddr) -> LangSmith {
    client(format!("http://{addr}"), "lsv2_pt_secret".into())
}

/// A client of one workspace at `api_url`, with no tenant configured and short retries.
fn client(api_url: String, key: String) -> LangSmith {
    let ws = WorkspaceConfig {
        api_url,
        tenant_id: None,
        organization_id: None,
        v2_path: None,
        allow_plain_http: false,
        erase_examples: true,
        api_key_env: None,
        api_key_file: None,
    };
    let retry = RetryConfig {
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
        ..RetryConfig::default()
    };
    LangSmith::new("main", &ws, Secret::new(key), &Limits::default(), &retry)
}

#[tokio::test]
async fn the_key_never_follows_a_redirect_to_another_origin() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let keys_seen = Arc::new(AtomicUsize::new(0));
    let seen = keys_seen.clone();
    let elsewhere = serve(axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let seen = seen.clone();
        async move {
            if headers.contains_key("x-api-key") {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            axum::Json(json!([]))
        }
    }))
    .await;
    let target = format!("http://{elsewhere}/api/v1/sessions");
    let redirecting = serve(axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { axum::response::Redirect::temporary(&target) }
    }))
    .await;
    let api = client_of(redirecting);
    let held = tokio::time::timeout(Duration::from_millis(500), api.session_by_name("p")).await;
    assert!(held.is_err(), "the workspace's work is held, not failed: {held:?}");
    assert_eq!(keys_seen.load(Ordering::Relaxed), 0, "the key went to another origin");
    assert!(!api.healthy(), "a redirect elsewhere marks the workspace misconfigured");
}

#[tokio::test]
async fn a_2xx_whose_body_does_not_parse_is_retried() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let flaky = serve(axum::Router::new().fallback(move || {
        let n = n.clone();
        async move {
            match n.fetch_add(1, Ordering::Relaxed) {
                0 => "<html>a proxy's page</html>".to_owned(),
                _ => json!([]).to_string(),
            }
        }
    }))
    .await;
    let found = client_of(flaky).session_by_name("p").await;
    assert_eq!(found.unwrap(), None, "read again, not refused");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn an_id_langsmith_chokes_on_fails_alone_and_the_rest_goes_through() {
    let s = setup();
    let gen = json!({"session_id": s.session, "traces": 30, "return_ids": true});
    let ws = s.sim.state().workspaces.keys().copied().next().unwrap();
    let (_, ids) = s
        .sim
        .state()
        .generate(ws, serde_json::from_value(gen).unwrap())
        .unwrap();
    s.sim.behaviour().poisoned_traces = vec![ids[17]];
    // Other calls get answers meanwhile: the server is up (with none, nothing would be split).
    let healthy = async {
        for _ in 0..20 {
            s.api.delete(s.session, &[Uuid::new_v4()], None).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (refused, ()) = tokio::join!(s.api.delete_all(s.session, &ids), healthy);
    assert_eq!(refused.keys().collect::<Vec<_>>(), [&ids[17]]);
    assert_eq!(refused[&ids[17]].reason, FailReason::RejectedByApi);
    let accepted: std::collections::BTreeSet<Uuid> =
        s.sim.delete_calls(ws).into_iter().flat_map(|(_, ids)| ids).collect();
    assert!(
        ids.iter().filter(|id| **id != ids[17]).all(|id| accepted.contains(id)),
        "every other id went through"
    );
}

#[tokio::test]
async fn a_project_gone_since_resolution_fails_its_batch_in_one_call() {
    let s = setup();
    s.sim.behaviour().gone_projects = vec![s.session];
    let refused = s.api.delete_all(s.session, &s.traces).await;
    assert_eq!(refused.len(), 2);
    assert!(
        refused.values().all(|r| r.reason == FailReason::UnknownSession),
        "{refused:?}"
    );
    let calls = paths(&s.sim).iter().filter(|p| p.0.ends_with("/runs/delete")).count();
    assert_eq!(calls, 1, "not 2n - 1 calls");
}

#[tokio::test]
async fn a_cursor_after_an_empty_page_is_followed_not_taken_for_gone() {
    let left = Uuid::new_v4();
    // Pages by time, as a server may: empty pages with a cursor before the one holding the trace.
    let pages = move |body: axum::Json<serde_json::Value>| async move {
        let page = match body.0["cursor"].as_str() {
            None => json!({"items": [], "next_cursor": "c1"}),
            Some("c1") => json!({"items": [], "next_cursor": "c2"}),
            _ => json!({"items": [{"root_run": {"id": left}}], "next_cursor": null}),
        };
        axum::Json(page)
    };
    let router = axum::Router::new()
        .route("/api/v2/traces/query", axum::routing::post(pages))
        .fallback(|| async { axum::Json(json!([])) });
    let api = client_of(serve(router).await);
    let since = Utc::now() - TimeDelta::days(1);
    let found = api
        .remaining(QueryApi::V2, Uuid::new_v4(), &[left, Uuid::new_v4()], since)
        .await;
    assert_eq!(found.unwrap().ids, vec![left]);
}
