//! The verifier's question: which of these traces of one project still exist? Cheapest first: one
//! query with a page of one answers "any left?"; only when some are left does it page through them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Class, LangSmith, Refused};
use crate::config::QueryApi;

#[derive(Deserialize)]
struct TracesPage {
    items: Vec<TraceItem>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct TraceItem {
    root_run: IdRow,
}

#[derive(Deserialize)]
struct RunsPage {
    runs: Vec<IdRow>,
    cursors: Option<super::Cursors>,
}

#[derive(Deserialize)]
struct IdRow {
    id: Uuid,
}

/// The answer to a check and what it cost.
#[derive(Debug, PartialEq)]
pub struct Remaining {
    pub ids: Vec<Uuid>,
    pub queries: u32,
}

impl LangSmith {
    /// The traces among `ids` (roots of `session`) that still exist. `since` bounds the start time
    /// the v2 API searches from: it must be older than every trace checked.
    pub async fn remaining(
        &self,
        api: QueryApi,
        session: Uuid,
        ids: &[Uuid],
        since: DateTime<Utc>,
    ) -> Result<Remaining, Refused> {
        let mut queries = 1;
        let (mut found, next) = self.page(api, session, ids, since, 1, None).await?;
        if next.is_none_or(|n| n.is_empty()) {
            // Only ids that were asked about count (a server may return more than it was asked for).
            found.retain(|id| ids.contains(id));
            return Ok(Remaining { ids: found, queries });
        }
        found.clear();
        let mut cursor = None;
        // A cursor is followed even after an empty page (a server may page by time, not by count);
        // a server that never stops is cut off, and then every id counts as left: never a false "gone".
        let most = ids.len() / 100 + 10;
        loop {
            queries += 1;
            let (page, next) = self.page(api, session, ids, since, 100, cursor).await?;
            found.extend(page);
            match next.filter(|n| !n.is_empty()) {
                Some(_) if queries as usize > most => {
                    tracing::warn!(workspace = %self.alias, %session, pages = queries, "LangSmith kept paging; counting every id as left");
                    return Ok(Remaining {
                        ids: ids.to_vec(),
                        queries,
                    });
                }
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        // Only ids that were asked about count (a server may return more than it was asked for).
        found.retain(|id| ids.contains(id));
        found.sort_unstable();
        found.dedup();
        Ok(Remaining { ids: found, queries })
    }

    async fn page(
        &self,
        api: QueryApi,
        session: Uuid,
        ids: &[Uuid],
        since: DateTime<Utc>,
        size: u32,
        cursor: Option<String>,
    ) -> Result<(Vec<Uuid>, Option<String>), Refused> {
        match api {
            QueryApi::V2 => {
                // `max_start_time` defaults to now: a trace stamped a little ahead by a skewed clock
                // would be missed and reported gone, so the bound is a day ahead.
                let until = Utc::now() + chrono::TimeDelta::days(1);
                let mut body = json!({
                    "project_id": session, "trace_ids": ids, "page_size": size, "selects": ["ID"],
                    "min_start_time": since.to_rfc3339_opts(SecondsFormat::Micros, true),
                    "max_start_time": until.to_rfc3339_opts(SecondsFormat::Micros, true),
                });
                if let Some(c) = cursor {
                    body["cursor"] = Value::String(c);
                }
                let page: TracesPage = self
                    .fetch(Class::QueryV2, || self.post_v2("/traces/query", &body))
                    .await?;
                Ok((
                    page.items.into_iter().map(|i| i.root_run.id).collect(),
                    page.next_cursor,
                ))
            }
            QueryApi::V1 => {
                let url = format!("{}/api/v1/runs/query", self.root);
                let mut body = json!({"id": ids, "limit": size, "select": ["id"]});
                if let Some(c) = cursor {
                    body["cursor"] = Value::String(c);
                }
                // An id list without a start time is rated in LangSmith's slowest v1 tier.
                let wide = Class::QueryWide;
                let page: RunsPage = self
                    .fetch(wide, || self.send(wide, |c| c.post(&url).json(&body)))
                    .await?;
                let next = page.cursors.and_then(|c| c.next);
                Ok((page.runs.into_iter().map(|r| r.id).collect(), next))
            }
        }
    }
}
