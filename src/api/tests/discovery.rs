//! A selector's query against the simulator, through v2 `runs/query` and v1 `runs/query` alike: a
//! project LangSmith forbids set apart, pages read one at a time, v1 when v2 is not served.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{paths, setup, Setup};
use crate::api::{Found, Roots, Search};
use crate::config::QueryApi;

/// Every page of `roots`: the (project, trace) pairs found and the projects refused.
pub(super) async fn every_page(mut roots: Roots<'_>) -> (Vec<(Uuid, Uuid)>, Vec<Uuid>) {
    let (mut traces, mut forbidden) = (Vec::new(), Vec::new());
    while let Some(found) = roots.next().await.unwrap() {
        match found {
            Found::Traces(t) => traces.extend(t),
            Found::Forbidden(p) => forbidden.push(p),
            Found::Runs(r) => panic!("runs are asked for by selectors searched together only: {r:?}"),
        }
    }
    (traces, forbidden)
}

/// What a selector with `expr` searches, anywhere in its traces, from `start` to `end`.
pub(super) fn search(expr: &str, start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Search {
    Search {
        pairs: Vec::new(),
        expr: expr.to_owned(),
        root_only: false,
        start,
        end,
    }
}

/// `traces` traces of `session` whose metadata holds `user_id = {prefix}0`.
fn traces_of(s: &Setup, session: Uuid, traces: usize, prefix: &str) -> Vec<Uuid> {
    let ws = *s.sim.state().workspaces.keys().next().unwrap();
    let metadata = json!([{"key": "user_id", "prefix": prefix, "distinct": 1}]);
    let gen = json!({"session_id": session, "traces": traces, "metadata": metadata, "return_ids": true});
    (s.sim.state())
        .generate(ws, serde_json::from_value(gen).unwrap())
        .unwrap()
        .1
}

fn query_path(how: QueryApi) -> &'static str {
    match how {
        QueryApi::V2 => "/api/v2/runs/query",
        QueryApi::V1 => "/api/v1/runs/query",
    }
}

#[tokio::test]
async fn a_selector_query_sets_a_forbidden_project_apart_and_searches_the_others() {
    for how in [QueryApi::V2, QueryApi::V1] {
        let s = setup();
        let ws = *s.sim.state().workspaces.keys().next().unwrap();
        let mut projects = vec![s.session];
        let mut wanted = Vec::new();
        for name in ["q", "r", "t"] {
            let new = serde_json::from_value(json!({"name": name})).unwrap();
            let p = s.sim.state().add_session(ws, new).unwrap();
            projects.push(p);
            wanted.push((p, traces_of(&s, p, 1, "u-9-")[0]));
        }
        s.sim.behaviour().forbidden_projects = vec![projects[2]];
        let expr = crate::api::filter::metadata_all([("user_id", "u-9-0")]);
        let roots = (s.api).root_traces(
            how,
            projects.clone().into(),
            search(&expr, Utc::now() - TimeDelta::days(1), None),
        );
        let (mut traces, forbidden) = every_page(roots).await;
        traces.sort();
        wanted.retain(|(p, _)| *p != projects[2]);
        wanted.sort();
        assert_eq!(traces, wanted, "{how:?}: the projects LangSmith lets us search");
        assert_eq!(forbidden, vec![projects[2]], "{how:?}");
        let other = paths(&s.sim)
            .iter()
            .filter(|p| p.0.ends_with("runs/query") && p.0 != query_path(how))
            .count();
        assert_eq!(other, 0, "{how:?}: only its own endpoint is asked");
    }
}

#[tokio::test]
async fn a_selector_query_is_read_a_page_at_a_time() {
    for (how, traces, want) in [
        (QueryApi::V2, 2500, vec![1000, 1000, 500]),
        (QueryApi::V1, 250, vec![100, 100, 50]),
    ] {
        let s = setup();
        traces_of(&s, s.session, traces, "u-8-");
        let expr = crate::api::filter::metadata_all([("user_id", "u-8-0")]);
        let sessions = [s.session];
        let mut roots = (s.api).root_traces(
            how,
            sessions[..].into(),
            search(&expr, Utc::now() - TimeDelta::days(1), None),
        );
        let mut pages = Vec::new();
        while let Some(found) = roots.next().await.unwrap() {
            let queries = paths(&s.sim).iter().filter(|p| p.0 == query_path(how)).count();
            let Found::Traces(t) = found else { panic!("{found:?}") };
            assert_eq!(
                queries,
                pages.len() + 1,
                "{how:?}: one query per page, fetched when asked for"
            );
            pages.push(t.len());
        }
        assert_eq!(pages, want, "{how:?}");
    }
}

/// An install that serves no v2 API: the selector's query answers 404 under both prefixes, and the
/// selector is searched through v1 instead of failing.
#[tokio::test]
async fn a_selector_is_searched_through_v1_where_v2_is_not_served() {
    let s = setup();
    let wanted = traces_of(&s, s.session, 3, "u-7-");
    s.sim.behaviour().serve_api_v2 = false;
    s.sim.behaviour().serve_bare_v2 = false;
    let expr = crate::api::filter::metadata_all([("user_id", "u-7-0")]);
    let sessions = [s.session];
    let roots = (s.api).root_traces(
        QueryApi::V2,
        sessions[..].into(),
        search(&expr, Utc::now() - TimeDelta::days(1), None),
    );
    let (traces, forbidden) = every_page(roots).await;
    let found: std::collections::BTreeSet<Uuid> = traces.into_iter().map(|(_, t)| t).collect();
    assert_eq!(found, wanted.into_iter().collect(), "found through v1");
    assert!(forbidden.is_empty());
}

/// A selector's end bounds the traces' start, inclusive, in both modes: v2 through its exclusive
/// `max_start_time` plus a microsecond, v1 through the filter.
#[tokio::test]
async fn a_selector_end_includes_a_trace_that_started_at_it_in_both_modes() {
    for (how, root_only) in [
        (QueryApi::V2, false),
        (QueryApi::V1, false),
        (QueryApi::V2, true),
        (QueryApi::V1, true),
    ] {
        let s = setup();
        let ids = traces_of(&s, s.session, 1, "u-6-");
        let started = {
            let state = s.sim.state();
            let ws = state.workspaces.values().next().unwrap();
            ws.runs[&ids[0]].start_time
        };
        let end = chrono::DateTime::from_timestamp_micros(started).unwrap();
        let expr = crate::api::filter::metadata_all([("user_id", "u-6-0")]);
        let sessions = [s.session];
        let since = Utc::now() - TimeDelta::days(1);
        let until = |end| Search {
            root_only,
            ..search(&expr, since, Some(end))
        };
        let at_end = every_page(s.api.root_traces(how, sessions[..].into(), until(end))).await;
        assert_eq!(
            at_end.0,
            vec![(s.session, ids[0])],
            "{how:?}, root only {root_only}: a trace that started at the end"
        );
        let before = end - TimeDelta::microseconds(1);
        let earlier = every_page(s.api.root_traces(how, sessions[..].into(), until(before))).await;
        assert_eq!(
            earlier.0,
            vec![],
            "{how:?}, root only {root_only}: none that started after it"
        );
    }
}

/// Personal data often sits in a child run's metadata: a selector finds a trace when any one of its
/// runs holds every pair, and, with `root_only`, only when its root run does. Pairs spread over two
/// runs of a trace match neither way.
#[tokio::test]
async fn a_selector_finds_a_trace_by_any_of_its_runs_or_by_its_root_alone() {
    for how in [QueryApi::V2, QueryApi::V1] {
        let s = setup();
        let ws = *s.sim.state().workspaces.keys().next().unwrap();
        let trace = |root: Value, child: Value| {
            let root_id = Uuid::new_v4();
            let runs = [
                json!({"id": root_id, "session_id": s.session, "metadata": root}),
                json!({"trace_id": root_id, "parent_run_id": root_id, "session_id": s.session, "metadata": child}),
            ];
            for run in runs {
                s.sim.state().add_run(ws, serde_json::from_value(run).unwrap()).unwrap();
            }
            root_id
        };
        let subject = json!({"user_id": "u-5", "tenant": "t"});
        let in_child = trace(json!({"tenant": "t"}), subject.clone());
        let in_root = trace(subject, json!({}));
        trace(json!({"tenant": "t"}), json!({"user_id": "u-5"}));
        let expr = crate::api::filter::metadata_all([("tenant", "t"), ("user_id", "u-5")]);
        let sessions = [s.session];
        for (root_only, mut want) in [(false, vec![in_child, in_root]), (true, vec![in_root])] {
            let search = Search {
                root_only,
                ..search(&expr, Utc::now() - TimeDelta::days(1), None)
            };
            let (traces, _) = every_page(s.api.root_traces(how, sessions[..].into(), search)).await;
            let mut found: Vec<Uuid> = traces.into_iter().map(|(_, t)| t).collect();
            found.sort();
            want.sort();
            assert_eq!(found, want, "{how:?}, root only {root_only}");
        }
    }
}
