//! Several selectors searched together: one v2 `runs/query` whose filter is an `or` of their
//! expressions, its runs told apart by their metadata. Selectors waiting together cost one query
//! (and its pages) instead of one each, within LangSmith's 300 v2 queries per 10 s.
//!
//! - `root_only` selectors: the root runs matching, with their start times. A run goes to each
//!   selector whose pairs its metadata holds and whose time range holds its start.
//! - The others: every run matching, by `filter` rather than `tree_filter`, so that each run's own
//!   metadata says which selector it matched. Starts are asked from the earliest selector's start
//!   (a run starts no earlier than its trace) to a day ahead (a matching run may start after a
//!   selector's end). The root runs of the traces found are then asked for their start times, one
//!   more query a page, and a trace goes to each selector whose pairs a run of it holds and whose
//!   time range holds its root's start: the same traces as the selector's own query finds.
//! - A run whose metadata holds no selector's pairs (LangSmith compared a value in a way this code
//!   does not) makes the answer [`Share::Unclaimed`]: the caller searches each selector alone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{Found, LangSmith, Refused, Roots, Search, V2Run};

/// A page of several selectors' query, shared out.
#[derive(Debug, PartialEq)]
pub enum Share {
    /// Per selector, in the order given, the (session, trace) pairs it matched.
    Each(Vec<Vec<(Uuid, Uuid)>>),
    /// A project LangSmith refused to search: refused to every selector.
    Forbidden(Uuid),
    /// A run no selector's pairs explain: search each alone.
    Unclaimed,
}

/// Several selectors' query, read a page at a time.
pub struct Together<'a> {
    api: &'a LangSmith,
    runs: Roots<'a>,
    searches: &'a [Search],
    /// The earliest start of the selectors'.
    start: DateTime<Utc>,
}

impl LangSmith {
    /// The traces in `sessions` that each of `searches` finds, searched together. They share
    /// `root_only` (the caller groups them so); there is at least one.
    pub fn together<'a>(&'a self, sessions: Arc<[Uuid]>, searches: &'a [Search]) -> Together<'a> {
        let start = (searches.iter().map(|s| s.start).min()).unwrap_or_else(Utc::now);
        let end = searches.iter().map(|s| s.end).collect::<Option<Vec<_>>>();
        let exprs: Vec<&str> = searches.iter().map(|s| s.expr.as_str()).collect();
        let search = Search {
            pairs: Vec::new(),
            expr: match exprs[..] {
                [one] => one.to_owned(),
                _ => format!("or({})", exprs.join(", ")),
            },
            root_only: searches.first().is_some_and(|s| s.root_only),
            start,
            end: end.and_then(|e| e.into_iter().max()),
        };
        Together {
            api: self,
            runs: self.runs_matching(sessions, search),
            searches,
            start,
        }
    }
}

impl Together<'_> {
    /// Whether a page may follow.
    pub fn more(&self) -> bool {
        self.runs.more()
    }

    /// The next page, shared out, or `None` when every session has been searched.
    pub async fn next(&mut self) -> Result<Option<Share>, Refused> {
        Ok(match self.runs.next().await? {
            None => None,
            Some(Found::Forbidden(project)) => Some(Share::Forbidden(project)),
            Some(Found::Runs(runs)) => Some(self.share(runs).await?),
            // Not asked for (runs are): taken as a page no selector explains.
            Some(Found::Traces(_)) => Some(Share::Unclaimed),
        })
    }

    async fn share(&self, runs: Vec<V2Run>) -> Result<Share, Refused> {
        let mut each = vec![BTreeSet::new(); self.searches.len()];
        // (selector, project, trace) of runs not at the root, whose trace's start is asked next.
        let mut below = Vec::new();
        for run in &runs {
            let mut claimed = false;
            for (i, search) in self.searches.iter().enumerate() {
                if !holds(run.metadata.as_ref(), &search.pairs) {
                    continue;
                }
                claimed = true;
                match (search.root_only, run.start_time, run.trace_id) {
                    (true, Some(at), _) if within(search, at) => drop(each[i].insert((run.project_id, run.id))),
                    (true, Some(_), _) => {}
                    (false, _, Some(trace)) => below.push((i, run.project_id, trace)),
                    // A field selected is missing: nothing here can be trusted.
                    _ => return Ok(Share::Unclaimed),
                }
            }
            if !claimed {
                return Ok(Share::Unclaimed);
            }
        }
        if !below.is_empty() {
            let projects: BTreeSet<Uuid> = below.iter().map(|b| b.1).collect();
            let traces: BTreeSet<Uuid> = below.iter().map(|b| b.2).collect();
            let (projects, traces): (Vec<Uuid>, Vec<Uuid>) =
                (projects.into_iter().collect(), traces.into_iter().collect());
            let roots = self.api.roots(&projects, &traces, self.start).await?;
            let starts: HashMap<Uuid, DateTime<Utc>> =
                roots.into_iter().filter_map(|r| Some((r.id, r.start_time?))).collect();
            for (i, project, trace) in below {
                if starts.get(&trace).is_some_and(|at| within(&self.searches[i], *at)) {
                    each[i].insert((project, trace));
                }
            }
        }
        Ok(Share::Each(each.into_iter().map(|s| s.into_iter().collect()).collect()))
    }
}

/// Whether `metadata` holds every pair: a string equal to the value, or a number or boolean
/// written as it.
fn holds(metadata: Option<&Map<String, Value>>, pairs: &[(String, String)]) -> bool {
    let Some(metadata) = metadata else { return false };
    pairs.iter().all(|(key, want)| match metadata.get(key) {
        Some(Value::String(s)) => s == want,
        Some(v @ (Value::Number(_) | Value::Bool(_))) => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *v),
        _ => false,
    })
}

/// Whether `at` is in the search's time range.
fn within(search: &Search, at: DateTime<Utc>) -> bool {
    at >= search.start && search.end.is_none_or(|end| at <= end)
}

/// The first page's body of several selectors' query (`Roots` pages it).
pub(super) fn first_body(sessions: &[Uuid], search: &Search) -> Value {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let ahead = Utc::now() + TimeDelta::days(1);
    let mut body = json!({
        "project_ids": sessions, "page_size": 1000, "filter": search.expr,
        "min_start_time": time(search.start),
    });
    if search.root_only {
        let before = search.end.map_or(ahead, |e| e + TimeDelta::microseconds(1));
        body["is_root"] = json!(true);
        body["selects"] = json!(["ID", "PROJECT_ID", "START_TIME", "METADATA"]);
        body["max_start_time"] = json!(time(before));
    } else {
        body["selects"] = json!(["ID", "PROJECT_ID", "TRACE_ID", "METADATA"]);
        body["max_start_time"] = json!(time(ahead));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_run_holds_a_selector_when_every_pair_is_there_as_written() {
        let m = |v: Value| v.as_object().cloned();
        let run = m(json!({"user_id": "u-1", "n": 7, "ok": true, "nested": {"a": "b"}}));
        assert!(holds(run.as_ref(), &pairs(&[("user_id", "u-1")])));
        assert!(holds(
            run.as_ref(),
            &pairs(&[("user_id", "u-1"), ("n", "7"), ("ok", "true")])
        ));
        assert!(!holds(run.as_ref(), &pairs(&[("user_id", "u-1"), ("n", "8")])));
        assert!(!holds(run.as_ref(), &pairs(&[("user_id", "u-10")])));
        assert!(!holds(run.as_ref(), &pairs(&[("nested", "{\"a\":\"b\"}")])));
        assert!(!holds(None, &pairs(&[("user_id", "u-1")])));
    }

    #[test]
    fn a_range_holds_its_ends() {
        let at: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let search = |start, end| Search {
            pairs: Vec::new(),
            expr: String::new(),
            root_only: true,
            start,
            end,
        };
        assert!(within(&search(at, Some(at)), at));
        assert!(within(&search(at, None), at + TimeDelta::days(400)));
        assert!(!within(&search(at, None), at - TimeDelta::microseconds(1)));
        assert!(!within(&search(at, Some(at)), at + TimeDelta::microseconds(1)));
    }
}
