//! Where named traces live. LangSmith's delete answers 202 whatever it matched, and a v2 check sees
//! one project only: a trace named with the wrong project would stay where it is and be reported
//! gone. So before a delete the intake asks which of the ids are root traces of the named project,
//! and where the others are; those in another project of the workspace are not deleted but fail
//! (`wrong_session`), in both check modes alike. Ids found nowhere (deleted already, expired by
//! retention, never ingested) are deleted as named: the check then finds them gone, which is true.
//!
//! With v2 checks: one v2 `runs/query` in the named project (the common case ends there), then,
//! for the ids it did not see, v2 `runs/query` over the workspace's other projects, 100 to a query,
//! from a list kept for a minute (a trace in a project created since is taken as nowhere). With v1
//! checks (installs without v2): v1 `runs/query` by id list, in LangSmith's slowest v1 tier.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Class, LangSmith, Refused};
use crate::config::QueryApi;

/// How long a listing of the workspace's projects is used.
const PROJECTS_TTL: Duration = Duration::from_secs(60);

/// Pages followed per query at most: 1000 ids fit one v2 page, ten v1 pages.
const MAX_PAGES: usize = 10;

/// The workspace's projects, as last listed.
#[derive(Default)]
pub(super) struct Projects(tokio::sync::Mutex<Option<(Instant, Arc<Vec<Uuid>>)>>);

#[derive(Deserialize)]
struct V2Page {
    items: Vec<V2Run>,
    next_cursor: Option<String>,
}

/// A run of a v2 `runs/query` answer: the fields asked for besides `ID` and `PROJECT_ID` are
/// there when they were selected.
#[derive(Debug, PartialEq, Deserialize)]
pub struct V2Run {
    pub id: Uuid,
    pub project_id: Uuid,
    #[serde(default)]
    pub trace_id: Option<Uuid>,
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

impl LangSmith {
    /// The ids among `ids` that are traces of another project than `session` (v2: started since
    /// `since`).
    pub async fn misplaced(
        &self,
        api: QueryApi,
        session: Uuid,
        ids: &[Uuid],
        since: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, Refused> {
        let unseen: Vec<Uuid> = match api {
            QueryApi::V2 => {
                let seen: HashSet<Uuid> = self
                    .roots(&[session], ids, since)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                ids.iter().filter(|id| !seen.contains(id)).copied().collect()
            }
            QueryApi::V1 => ids.to_vec(),
        };
        if unseen.is_empty() {
            return Ok(Vec::new());
        }
        // A refusal here is about other projects (a 403 of attribute-based access control on one
        // of them): the ids are taken as nowhere, as before this look, rather than failed.
        let found = match self.elsewhere(api, session, &unseen, since).await {
            Ok(found) => found,
            Err(a) => {
                tracing::warn!(workspace = %self.alias, status = a.status.as_u16(),
                    "LangSmith refused the look for trace ids in other projects: taken as nowhere");
                Vec::new()
            }
        };
        let asked: HashSet<&Uuid> = unseen.iter().collect();
        let mut elsewhere: Vec<Uuid> = found
            .into_iter()
            .filter(|(id, p)| *p != session && asked.contains(id))
            .map(|(id, _)| id)
            .collect();
        elsewhere.sort_unstable();
        elsewhere.dedup();
        Ok(elsewhere)
    }

    /// (id, project) of the ids among `unseen` in the workspace (v2: in its projects but `session`).
    async fn elsewhere(
        &self,
        api: QueryApi,
        session: Uuid,
        unseen: &[Uuid],
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Uuid)>, Refused> {
        match api {
            QueryApi::V2 => {
                let others: Vec<Uuid> = self
                    .projects()
                    .await?
                    .iter()
                    .filter(|p| **p != session)
                    .copied()
                    .collect();
                let roots = self.roots(&others, unseen, since).await?;
                Ok(roots.into_iter().map(|r| (r.id, r.project_id)).collect())
            }
            QueryApi::V1 => self.locate(unseen).await,
        }
    }

    /// The workspace's projects, listed at most once per [`PROJECTS_TTL`].
    pub async fn projects(&self) -> Result<Arc<Vec<Uuid>>, Refused> {
        let mut held = self.projects.0.lock().await;
        if let Some((_, list)) = held.as_ref().filter(|(at, _)| at.elapsed() < PROJECTS_TTL) {
            return Ok(list.clone());
        }
        let list = Arc::new(self.all_sessions().await?);
        *held = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// The root runs among `ids` in `projects` that started since `since` (with their project and
    /// start time): v2 `runs/query`, 100 projects and up to 1000 ids (one page) to a query.
    pub(super) async fn roots(
        &self,
        projects: &[Uuid],
        ids: &[Uuid],
        since: DateTime<Utc>,
    ) -> Result<Vec<V2Run>, Refused> {
        let until = Utc::now() + TimeDelta::days(1);
        let mut found = Vec::new();
        for projects in projects.chunks(100) {
            for chunk in ids.chunks(1000) {
                let body = json!({
                    "project_ids": projects, "ids": chunk, "is_root": true, "page_size": 1000,
                    "selects": ["ID", "PROJECT_ID", "START_TIME"],
                    "min_start_time": since.to_rfc3339_opts(SecondsFormat::Micros, true),
                    "max_start_time": until.to_rfc3339_opts(SecondsFormat::Micros, true),
                });
                found.extend(self.roots_pages(body).await?);
            }
        }
        Ok(found)
    }

    async fn roots_pages(&self, mut body: Value) -> Result<Vec<V2Run>, Refused> {
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let (runs, next) = self.v2_runs_page(&body).await?;
            found.extend(runs);
            match next {
                Some(c) => body["cursor"] = Value::String(c),
                None => break,
            }
        }
        Ok(found)
    }

    /// One page of v2 `runs/query` (selecting at least `ID` and `PROJECT_ID`): its runs and the
    /// cursor of the next page, if there is one (an empty page ends the query).
    pub(super) async fn v2_runs_page(&self, body: &Value) -> Result<(Vec<V2Run>, Option<String>), Refused> {
        let page: V2Page = self.fetch(Class::QueryV2, || self.post_v2("/runs/query", body)).await?;
        let next = (page.next_cursor).filter(|c| !c.is_empty() && !page.items.is_empty());
        Ok((page.items, next))
    }

    /// (id, project) of the runs among `ids` anywhere in the workspace: v1 `runs/query` with an id
    /// list (1000 to a query; pages of 100 runs found), in LangSmith's slowest v1 tier.
    async fn locate(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>, Refused> {
        let mut found = Vec::new();
        for chunk in ids.chunks(1000) {
            let body = json!({"id": chunk, "limit": 100, "select": ["id", "session_id"]});
            found.extend(self.runs_pages(Class::QueryWide, body, MAX_PAGES).await?);
        }
        Ok(found)
    }
}
