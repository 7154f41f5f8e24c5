//! Selectors searched together find, each, what it finds alone: the same traces, by the same time
//! bounds on a trace's start, in one v2 query (and one for the roots' start times) instead of one
//! per selector.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use super::discovery::every_page;
use super::{setup, Setup};
use crate::api::{filter, Search, Share};
use crate::config::QueryApi;

/// Adds a trace to `session`: its root run starts at `root.0` with metadata `root.1`; a child run,
/// when given, likewise.
fn trace(
    s: &Setup,
    session: Uuid,
    root: (DateTime<Utc>, serde_json::Value),
    child: Option<(DateTime<Utc>, serde_json::Value)>,
) -> Uuid {
    let ws = *s.sim.state().workspaces.keys().next().unwrap();
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let id = Uuid::new_v4();
    let mut runs = vec![json!({"id": id, "session_id": session, "start_time": time(root.0), "metadata": root.1})];
    if let Some((at, metadata)) = child {
        runs.push(json!({"trace_id": id, "parent_run_id": id, "session_id": session, "start_time": time(at), "metadata": metadata}));
    }
    for run in runs {
        s.sim.state().add_run(ws, serde_json::from_value(run).unwrap()).unwrap();
    }
    id
}

fn selector(pairs: &[(&str, &str)], root_only: bool, start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Search {
    Search {
        pairs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        expr: filter::metadata_all(pairs.iter().copied()),
        root_only,
        start,
        end,
    }
}

fn v2_queries(s: &Setup) -> u64 {
    s.sim.counters().calls_to(&["POST /api/v2/runs/query"])
}

#[tokio::test]
async fn selectors_searched_together_each_find_what_they_find_alone() {
    let s = setup();
    let ws = *s.sim.state().workspaces.keys().next().unwrap();
    let other = (s.sim.state())
        .add_session(ws, serde_json::from_value(json!({"name": "q"})).unwrap())
        .unwrap();
    let sessions: std::sync::Arc<[Uuid]> = [s.session, other].into();
    let t0 = Utc::now() - TimeDelta::hours(2);
    let minutes = TimeDelta::minutes;
    let a = json!({"user_id": "a"});
    let in_root = trace(&s, s.session, (t0, a.clone()), None);
    // Began before some selectors' start; the run naming the subject began after it.
    let early = trace(
        &s,
        s.session,
        (t0 - minutes(10), json!({})),
        Some((t0 + minutes(1), a.clone())),
    );
    let both = json!({"user_id": "b", "tenant": "t"});
    let elsewhere = trace(&s, other, (t0, both.clone()), None);
    let in_child = trace(
        &s,
        s.session,
        (t0, json!({})),
        Some((t0 + minutes(1), json!({"user_id": "b"}))),
    );
    let at_end = trace(&s, other, (t0 + minutes(30), json!({"user_id": "c"})), None);
    let end = t0 + minutes(30);
    let just_before = end - TimeDelta::microseconds(1);
    let hour_ago = t0 - minutes(60);
    for root_only in [false, true] {
        let searches = [
            selector(&[("user_id", "a")], root_only, t0 - minutes(5), None),
            selector(&[("user_id", "a")], root_only, t0 - minutes(20), None),
            selector(&[("user_id", "b")], root_only, hour_ago, None),
            selector(&[("user_id", "c")], root_only, hour_ago, Some(end)),
            selector(&[("user_id", "c")], root_only, hour_ago, Some(just_before)),
            selector(&[("tenant", "t"), ("user_id", "b")], root_only, hour_ago, None),
            selector(&[("user_id", "nobody")], root_only, hour_ago, None),
        ];
        let before = v2_queries(&s);
        let mut together = vec![BTreeSet::new(); searches.len()];
        let mut query = s.api.together(sessions.clone(), &searches);
        while let Some(share) = query.next().await.unwrap() {
            let Share::Each(each) = share else { panic!("{share:?}") };
            for (mine, found) in together.iter_mut().zip(each) {
                mine.extend(found.into_iter().map(|(_, t)| t));
            }
        }
        let queries = v2_queries(&s) - before;
        assert!(queries <= 2, "root only {root_only}: {queries} v2 queries");
        for (search, found) in searches.iter().zip(&together) {
            let (alone, _) = every_page(s.api.root_traces(QueryApi::V2, sessions.clone(), search.clone())).await;
            let alone: BTreeSet<Uuid> = alone.into_iter().map(|(_, t)| t).collect();
            assert_eq!(found, &alone, "root only {root_only}: {:?}", search.pairs);
        }
        let set = |ids: &[Uuid]| ids.iter().copied().collect::<BTreeSet<_>>();
        let want_b = if root_only {
            set(&[elsewhere])
        } else {
            set(&[elsewhere, in_child])
        };
        assert_eq!(together[0], set(&[in_root]), "root only {root_only}");
        let want_early = if root_only {
            set(&[in_root])
        } else {
            set(&[in_root, early])
        };
        assert_eq!(together[1], want_early, "root only {root_only}");
        assert_eq!(together[2], want_b, "root only {root_only}");
        assert_eq!(
            (&together[3], &together[4]),
            (&set(&[at_end]), &set(&[])),
            "root only {root_only}"
        );
        assert_eq!(together[5], set(&[elsewhere]), "root only {root_only}");
        assert!(together[6].is_empty());
    }
}

/// A run that no selector's pairs explain (here, a filter that does not say what its pairs say)
/// is not given to anyone: the answer says to search each alone.
#[tokio::test]
async fn a_run_no_selector_explains_sends_them_to_search_alone() {
    let s = setup();
    trace(
        &s,
        s.session,
        (Utc::now() - TimeDelta::hours(1), json!({"user_id": "a"})),
        None,
    );
    let since = Utc::now() - TimeDelta::days(1);
    let mut lying = selector(&[("user_id", "z")], true, since, None);
    lying.expr = filter::metadata_all([("user_id", "a")]);
    let searches = [lying, selector(&[("user_id", "y")], true, since, None)];
    let mut query = s.api.together([s.session].into(), &searches);
    assert_eq!(query.next().await.unwrap(), Some(Share::Unclaimed));
}
