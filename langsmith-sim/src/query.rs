//! Run selection shared by the v1 and v2 query endpoints: which runs match, newest first.

use std::sync::Arc;

use uuid::Uuid;

use crate::filter::{matches, Expr};
use crate::model::{Matched, Micros, RecentQueries, Run, Workspace};

#[derive(Debug, Default)]
pub struct RunQuery {
    /// Run ids: when given, the other filters are ignored (v1 semantics) unless `ids_narrow`.
    pub ids: Option<Vec<Uuid>>,
    /// v2 semantics: ids narrow the project/time filters instead of replacing them.
    pub ids_narrow: bool,
    pub trace: Option<Uuid>,
    pub sessions: Option<Vec<Uuid>>,
    pub is_root: Option<bool>,
    pub run_type: Option<String>,
    pub parent_run: Option<Uuid>,
    pub error: Option<bool>,
    /// Inclusive bounds on a run's start.
    pub min_start: Option<Micros>,
    pub max_start: Option<Micros>,
    /// Inclusive bound on a run's end (v1 `end_time`): a run that has not ended does not match.
    pub max_end: Option<Micros>,
    pub filter: Option<Expr>,
    pub trace_filter: Option<Expr>,
    pub tree_filter: Option<Expr>,
    pub ascending: bool,
}

impl RunQuery {
    fn keeps(&self, ws: &Workspace, run: &Run) -> bool {
        let in_sessions = self.sessions.as_ref().is_none_or(|s| s.contains(&run.session_id));
        in_sessions
            && self.is_root.is_none_or(|want| run.is_root() == want)
            && self
                .run_type
                .as_ref()
                .is_none_or(|t| t.eq_ignore_ascii_case(&run.run_type))
            && self.parent_run.is_none_or(|p| run.parent_run_id == Some(p))
            && self.error.is_none_or(|e| run.error.is_some() == e)
            && self.min_start.is_none_or(|t| run.start_time >= t)
            && self.max_start.is_none_or(|t| run.start_time <= t)
            && self.max_end.is_none_or(|t| run.end_time.is_some_and(|e| e <= t))
            && self.filter.as_ref().is_none_or(|f| matches(f, run))
            && self
                .trace_filter
                .as_ref()
                .is_none_or(|f| ws.root(run.trace_id).is_some_and(|root| matches(f, root)))
            && self.tree_filter.as_ref().is_none_or(|f| {
                ws.traces
                    .get(&run.trace_id)
                    .is_some_and(|ids| ids.iter().filter_map(|id| ws.runs.get(id)).any(|r| matches(f, r)))
            })
    }

    /// Every matching run, newest first (or oldest first when `ascending`), ties broken by id.
    pub fn run<'w>(&self, ws: &'w Workspace) -> Vec<&'w Run> {
        let mut out: Vec<&Run> = match (&self.ids, self.trace) {
            (Some(ids), _) => {
                let found = ids.iter().filter_map(|id| ws.runs.get(id));
                if self.ids_narrow {
                    found.filter(|r| self.keeps(ws, r)).collect()
                } else {
                    found.collect()
                }
            }
            (None, Some(trace)) => ws
                .traces
                .get(&trace)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| ws.runs.get(id))
                        .filter(|r| self.keeps(ws, r))
                        .collect()
                })
                .unwrap_or_default(),
            (None, None) => ws.runs.values().filter(|r| self.keeps(ws, r)).collect(),
        };
        out.sort_unstable_by_key(|r| (r.start_time, r.id));
        out.dedup_by_key(|r| r.id);
        if !self.ascending {
            out.reverse();
        }
        out
    }
}

impl RunQuery {
    /// What the query matches, from the workspace's recent queries when the runs have not changed
    /// since (queries kept at most: 64). Queries by id list are cheap and not kept: a client's many
    /// lookups by id would push out the scans worth keeping.
    pub fn matched(&self, ws: &mut Workspace) -> Arc<Matched> {
        let key = format!("{self:?}");
        if ws.recent.version != ws.version {
            ws.recent = RecentQueries {
                version: ws.version,
                ..Default::default()
            };
        }
        if let Some(m) = ws.recent.matches.get(&key) {
            return m.clone();
        }
        let all = self.run(ws);
        let mut sessions: Vec<Uuid> = all.iter().map(|r| r.session_id).collect();
        sessions.sort_unstable();
        sessions.dedup();
        let m = Arc::new(Matched {
            ids: all.iter().map(|r| r.id).collect(),
            sessions,
        });
        if self.ids.is_some() {
            return m;
        }
        if ws.recent.matches.len() >= 64 {
            ws.recent.matches.clear();
        }
        ws.recent.matches.insert(key, m.clone());
        m
    }
}

/// Cursors are opaque to clients; here they carry the offset of the next page.
pub fn encode_cursor(offset: usize) -> String {
    format!("o{offset:x}")
}

pub fn decode_cursor(cursor: &str) -> Option<usize> {
    cursor
        .strip_prefix('o')
        .and_then(|hex| usize::from_str_radix(hex, 16).ok())
}

/// One page of `items` from `cursor`, and the cursor of the next page if there is one.
pub fn page<T: Copy>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<String>) {
    let end = offset.saturating_add(size).min(items.len());
    let slice = items.get(offset.min(items.len())..end).unwrap_or(&[]).to_vec();
    let next = (end < items.len()).then(|| encode_cursor(end));
    (slice, next)
}
