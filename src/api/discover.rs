//! Discovery: the root traces a metadata selector matches, through v2 `runs/query` (300 per 10 s
//! per key, pages of up to 1,000), or v1 `POST /runs/query` on installs without v2
//! (`verifier.query_api = "v1"`, and for the rest of a selector whose v2 query answers 404). The SDK
//! deprecates v1 `list_runs` after 2027-01-31.
//!
//! Time bounds apply to each trace's *start*. v2 takes them as `min_start_time` (inclusive) and
//! `max_start_time` (exclusive: the end plus a microsecond). v1's `start_time` is a lower bound on
//! it, but v1's `end_time` filters on a run's own *end* and would miss a trace that started in the
//! range and ended after it (or never ended), so there the upper bound goes into the filter as
//! `lte(start_time, …)`. LangSmith rate-limits v1 queries by shape: a range of at most 7 days gets
//! the 10 per 10 s tier, anything wider (or no `start_time`) the 3 per 10 s tier, so each shape has
//! its own gate.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{filter, Class, Cursors, LangSmith, Refused, V2Run};
use crate::config::QueryApi;

/// The widest range LangSmith rates in the faster v1 query tier.
const NARROW_RANGE: TimeDelta = TimeDelta::days(7);

/// Runs per v2 page (its limit): a selector's page goes to delete calls before the next is fetched.
const V2_PAGE: usize = 1000;

#[derive(Deserialize)]
struct RunsPage {
    runs: Vec<RunRow>,
    cursors: Option<Cursors>,
}

#[derive(Deserialize)]
struct RunRow {
    id: Uuid,
    session_id: Uuid,
}

/// The v1 rate tier of a query whose start times range from `start` to now.
pub fn tier(start: DateTime<Utc>, now: DateTime<Utc>) -> Class {
    if now - start <= NARROW_RANGE {
        Class::Query
    } else {
        Class::QueryWide
    }
}

/// `expr` (if any), restricted to runs that started at or before `end` when there is one.
pub fn started_by(expr: Option<&str>, end: Option<DateTime<Utc>>) -> Option<String> {
    let bound = |end: DateTime<Utc>| {
        let end = filter::quote(&end.to_rfc3339_opts(SecondsFormat::Micros, true));
        format!("lte(start_time, {end})")
    };
    match (expr, end) {
        (expr, None) => expr.map(str::to_owned),
        (None, Some(end)) => Some(bound(end)),
        (Some(expr), Some(end)) => Some(format!("and({expr}, {})", bound(end))),
    }
}

/// What a selector searches for: traces with a run matching `expr` (anywhere in the trace, or only
/// its root run when `root_only`) that started in `[start, end]`. `expr` is the metadata `pairs`,
/// all of them (`filter::metadata_all`), or an `or` of several selectors' (`api/together.rs`).
#[derive(Debug, Clone)]
pub struct Search {
    pub pairs: Vec<(String, String)>,
    pub expr: String,
    pub root_only: bool,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// A page of a selector's query: (session, trace) pairs found, or a project LangSmith refused to
/// search (403, attribute-based access control), set apart so that one cannot hide the others.
/// Several selectors' query together finds `Runs`, to be told apart by their metadata.
#[derive(Debug, PartialEq)]
pub enum Found {
    Traces(Vec<(Uuid, Uuid)>),
    Forbidden(Uuid),
    Runs(Vec<V2Run>),
}

/// A selector's query, read a page at a time (`next`), so that a selector matching a million traces
/// is never held whole. Sessions go 100 to a query; a query answered 403 is split in halves until
/// the projects refused are found.
pub struct Roots<'a> {
    api: &'a LangSmith,
    how: QueryApi,
    search: Search,
    sessions: Arc<[Uuid]>,
    /// The sessions not searched yet, a query's worth each (indices into `sessions`).
    todo: Vec<Range<usize>>,
    /// The query being paged: its body (with the cursor of its next page) and its sessions.
    paging: Option<(Value, Range<usize>)>,
    /// Several selectors' query (v2 only): the runs matching, with their metadata.
    together: bool,
}

impl LangSmith {
    /// The root traces in `sessions` that `search` finds, page by page, through the `how` query API.
    pub fn root_traces(&self, how: QueryApi, sessions: Arc<[Uuid]>, search: Search) -> Roots<'_> {
        Roots {
            api: self,
            how,
            search,
            todo: (0..sessions.len())
                .step_by(100)
                .rev()
                .map(|i| i..sessions.len().min(i + 100))
                .collect(),
            sessions,
            paging: None,
            together: false,
        }
    }

    /// The runs in `sessions` matching `search`, an `or` of several selectors' expressions, page by
    /// page through v2 (a 404 is returned, not searched through v1): each run with its project,
    /// metadata and trace (`root_only`: its start time; the root runs' are for the caller to ask).
    pub(super) fn runs_matching(&self, sessions: Arc<[Uuid]>, search: Search) -> Roots<'_> {
        Roots {
            together: true,
            ..self.root_traces(QueryApi::V2, sessions, search)
        }
    }

    /// v1 `POST /runs/query` with `body` (selecting `id` and `session_id`), following its cursor
    /// for at most `max_pages` pages: the (run, session) pairs.
    pub(super) async fn runs_pages(
        &self,
        class: Class,
        mut body: Value,
        max_pages: usize,
    ) -> Result<Vec<(Uuid, Uuid)>, Refused> {
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let (runs, next) = self.runs_page(class, &body).await?;
            out.extend(runs);
            match next {
                Some(next) => body["cursor"] = Value::String(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// One page of v1 `POST /runs/query`: its (run, session) pairs and the cursor of the next page,
    /// if there is one (an empty page ends the query, whatever its cursor says).
    async fn runs_page(&self, class: Class, body: &Value) -> Result<(Vec<(Uuid, Uuid)>, Option<String>), Refused> {
        let url = format!("{}/api/v1/runs/query", self.root);
        let page: RunsPage = self
            .fetch(class, || self.send(class, |c| c.post(&url).json(body)))
            .await?;
        let next = (page.cursors.and_then(|c| c.next)).filter(|n| !n.is_empty() && !page.runs.is_empty());
        Ok((page.runs.iter().map(|r| (r.id, r.session_id)).collect(), next))
    }
}

impl Roots<'_> {
    /// Whether a page may follow: a query being paged, or sessions not searched yet.
    pub fn more(&self) -> bool {
        self.paging.is_some() || !self.todo.is_empty()
    }

    /// The next page, or `None` when every session has been searched.
    pub async fn next(&mut self) -> Result<Option<Found>, Refused> {
        loop {
            let (body, chunk) = match self.paging.take() {
                Some(paging) => paging,
                None => match self.todo.pop() {
                    Some(chunk) => (self.first_body(&self.sessions[chunk.clone()]), chunk),
                    None => return Ok(None),
                },
            };
            let page = match self.how {
                QueryApi::V2 => (self.api.v2_runs_page(&body).await).map(|(runs, next)| {
                    let found = match self.together {
                        true => Found::Runs(runs),
                        false => Found::Traces(runs.into_iter().map(|r| (r.project_id, r.id)).collect()),
                    };
                    (found, next)
                }),
                QueryApi::V1 => (self.api.runs_page(tier(self.search.start, Utc::now()), &body).await)
                    .map(|(runs, next)| (Found::Traces(runs.into_iter().map(|(id, s)| (s, id)).collect()), next)),
            };
            match page {
                Err(a) if a.status == reqwest::StatusCode::NOT_FOUND && self.how == QueryApi::V2 && !self.together => {
                    tracing::warn!(workspace = %self.api.alias, "v2 runs/query answered 404: this selector is searched through v1");
                    self.how = QueryApi::V1;
                    self.todo.push(chunk);
                }
                Ok((runs, next)) => {
                    if let Some(next) = next {
                        let mut body = body;
                        body["cursor"] = Value::String(next);
                        self.paging = Some((body, chunk));
                    }
                    return Ok(Some(runs));
                }
                Err(a) if a.status == reqwest::StatusCode::FORBIDDEN && chunk.len() > 1 => {
                    let half = chunk.start + chunk.len() / 2;
                    self.todo.extend([half..chunk.end, chunk.start..half]);
                }
                Err(a) if a.status == reqwest::StatusCode::FORBIDDEN => {
                    return Ok(Some(Found::Forbidden(self.sessions[chunk.start])))
                }
                Err(a) => return Err(a),
            }
        }
    }

    /// The first page's body. Root runs are asked for, and the selector's expression is their
    /// `filter` with `root_only`, else the `tree_filter` (a trace any of whose runs matches).
    fn first_body(&self, sessions: &[Uuid]) -> Value {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        let Search {
            expr,
            root_only,
            start,
            end,
            ..
        } = &self.search;
        if self.together {
            return super::together::first_body(sessions, &self.search);
        }
        let own = root_only.then_some(expr.as_str());
        let (mut body, filter) = match self.how {
            QueryApi::V2 => {
                // A day ahead without an end: a trace stamped ahead by a skewed clock is found.
                let before = end.map_or(Utc::now() + TimeDelta::days(1), |e| e + TimeDelta::microseconds(1));
                let body = json!({
                    "project_ids": sessions, "is_root": true, "page_size": V2_PAGE, "selects": ["ID", "PROJECT_ID"],
                    "min_start_time": time(*start), "max_start_time": time(before),
                });
                (body, own.map(str::to_owned))
            }
            QueryApi::V1 => {
                let body = json!({
                    "session": sessions, "is_root": true, "limit": 100, "select": ["id", "session_id"],
                    "start_time": time(*start),
                });
                (body, started_by(own, *end))
            }
        };
        if !root_only {
            body["tree_filter"] = Value::String(expr.clone());
        }
        if let Some(filter) = filter {
            body["filter"] = Value::String(filter);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_a_week_or_less_get_the_faster_tier() {
        let now = Utc::now();
        assert_eq!(tier(now - TimeDelta::days(7), now), Class::Query);
        assert_eq!(
            tier(now - TimeDelta::days(7) - TimeDelta::seconds(1), now),
            Class::QueryWide
        );
        assert_eq!(tier(now - TimeDelta::days(400), now), Class::QueryWide);
    }

    #[test]
    fn the_end_bounds_the_start_time_in_the_filter() {
        let end = "2026-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            started_by(Some("eq(metadata_key, \"k\")"), Some(end)).unwrap(),
            "and(eq(metadata_key, \"k\"), lte(start_time, \"2026-03-01T00:00:00.000000Z\"))"
        );
        assert_eq!(
            started_by(None, Some(end)).unwrap(),
            "lte(start_time, \"2026-03-01T00:00:00.000000Z\")"
        );
        assert_eq!(started_by(Some("x"), None).unwrap(), "x");
        assert_eq!(started_by(None, None), None);
    }
}
