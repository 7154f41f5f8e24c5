//! Discovery: the root traces a metadata selector matches, through v1 `POST /runs/query`.
//!
//! Time bounds apply to each trace's *start*: v1's `start_time` is a lower bound on it, but v1's
//! `end_time` filters on a run's own *end* and would miss a trace that started in the range and ended
//! after it (or never ended), so the upper bound goes into the filter as `lte(start_time, …)`.
//! LangSmith rate-limits v1 queries by shape: a range of at most 7 days gets the 10 per 10 s tier,
//! anything wider (or no `start_time`) the 3 per 10 s tier, so each shape has its own gate.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{filter, Answer, Class, Cursors, LangSmith};

/// The widest range LangSmith rates in the faster v1 query tier.
const NARROW_RANGE: TimeDelta = TimeDelta::days(7);

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

/// `expr`, restricted to runs that started at or before `end` when there is one.
pub fn started_by(expr: &str, end: Option<DateTime<Utc>>) -> String {
    match end {
        None => expr.to_owned(),
        Some(end) => format!(
            "and({expr}, lte(start_time, {}))",
            filter::quote(&end.to_rfc3339_opts(SecondsFormat::Micros, true))
        ),
    }
}

/// What a selector's query found: (session, trace) pairs, and the projects LangSmith refused to search
/// (403, attribute-based access control), set apart so that one cannot hide the others.
#[derive(Debug, Default, PartialEq)]
pub struct Discovered {
    pub traces: Vec<(Uuid, Uuid)>,
    pub forbidden: Vec<Uuid>,
}

impl LangSmith {
    /// Root traces in `sessions` matching `expr` that started in `[start, end]`. Sessions go 100 to a
    /// query; a query answered 403 is split in halves until the projects refused are found.
    pub async fn root_traces(
        &self,
        sessions: &[Uuid],
        expr: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Discovered, Answer> {
        let filter = started_by(expr, end);
        let mut out = Discovered::default();
        let mut todo: Vec<&[Uuid]> = sessions.chunks(100).rev().collect();
        while let Some(chunk) = todo.pop() {
            match self.roots_matching(chunk, &filter, start).await {
                Ok(found) => out.traces.extend(found),
                Err(a) if a.status == reqwest::StatusCode::FORBIDDEN && chunk.len() > 1 => {
                    let (left, right) = chunk.split_at(chunk.len() / 2);
                    todo.extend([right, left]);
                }
                Err(a) if a.status == reqwest::StatusCode::FORBIDDEN => out.forbidden.push(chunk[0]),
                Err(a) => return Err(a),
            }
        }
        Ok(out)
    }

    /// One query over at most 100 sessions, every page of it, as (session, trace).
    async fn roots_matching(
        &self,
        sessions: &[Uuid],
        filter: &str,
        start: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Uuid)>, Answer> {
        let body = json!({
            "session": sessions, "is_root": true, "filter": filter, "limit": 100,
            "select": ["id", "session_id"],
            "start_time": start.to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        let runs = self.runs_pages(tier(start, Utc::now()), body, usize::MAX).await?;
        Ok(runs.into_iter().map(|(id, session)| (session, id)).collect())
    }

    /// v1 `POST /runs/query` with `body` (selecting `id` and `session_id`), following its cursor
    /// for at most `max_pages` pages: the (run, session) pairs.
    pub(super) async fn runs_pages(
        &self,
        class: Class,
        mut body: Value,
        max_pages: usize,
    ) -> Result<Vec<(Uuid, Uuid)>, Answer> {
        let url = format!("{}/api/v1/runs/query", self.root);
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let page: RunsPage = self
                .fetch(class, || self.send(class, |c| c.post(&url).json(&body)))
                .await?;
            out.extend(page.runs.iter().map(|r| (r.id, r.session_id)));
            match page
                .cursors
                .and_then(|c| c.next)
                .filter(|n| !n.is_empty() && !page.runs.is_empty())
            {
                Some(next) => body["cursor"] = Value::String(next),
                None => break,
            }
        }
        Ok(out)
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
            started_by("eq(metadata_key, \"k\")", Some(end)),
            "and(eq(metadata_key, \"k\"), lte(start_time, \"2026-03-01T00:00:00.000000Z\"))"
        );
        assert_eq!(started_by("x", None), "x");
    }
}
