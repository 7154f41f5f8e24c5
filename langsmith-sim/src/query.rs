//! Run selection shared by the v1 and v2 query endpoints: which runs match, newest first.

use std::sync::Arc;

use uuid::Uuid;

use crate::filter::{matches, Expr, Field, Lit, Op};
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

    /// The runs that can match when a filter requires one metadata pair, from the workspace's
    /// index (`None`: no such filter, every run is a candidate). A tree filter's pair may be held
    /// by any run of a trace, so every run of those traces is a candidate.
    fn candidates<'w>(&self, ws: &'w Workspace) -> Option<Vec<&'w Run>> {
        let runs = |(k, v): (&str, &str)| ws.holding(k, v).filter_map(|id| ws.runs.get(id));
        if let Some(pair) = self.filter.as_ref().and_then(required_pair) {
            return Some(runs(pair).collect());
        }
        let pair = self.tree_filter.as_ref().and_then(required_pair)?;
        let mut traces: Vec<Uuid> = runs(pair).map(|r| r.trace_id).collect();
        traces.sort_unstable();
        traces.dedup();
        let of_trace = |t: &Uuid| ws.traces.get(t).into_iter().flatten().filter_map(|id| ws.runs.get(id));
        Some(traces.iter().flat_map(of_trace).collect())
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
            (None, None) => match self.candidates(ws) {
                Some(runs) => runs.into_iter().filter(|r| self.keeps(ws, r)).collect(),
                None => ws.runs.values().filter(|r| self.keeps(ws, r)).collect(),
            },
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

/// A metadata pair that every run matching `expr` holds: `and(eq(metadata_key, k),
/// eq(metadata_value, v), …)`, directly or inside further `and`s (the shape of a selector).
fn required_pair(expr: &Expr) -> Option<(&str, &str)> {
    let Expr::And(items) = expr else {
        return None;
    };
    let eq = |field| {
        items.iter().find_map(|e| match e {
            Expr::Cmp(Op::Eq, f, Lit::Str(s)) if *f == field => Some(s.as_str()),
            _ => None,
        })
    };
    match (eq(Field::MetadataKey), eq(Field::MetadataValue)) {
        (Some(k), Some(v)) => Some((k, v)),
        _ => items.iter().find_map(required_pair),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;
    use crate::rng::Rng;

    /// Three traces of up to three runs each per round, metadata drawn from few pairs so that
    /// runs share them; some runs are replaced and some traces removed between rounds.
    fn grow(ws: &mut Workspace, rng: &mut Rng, session: Uuid) {
        for _ in 0..3 {
            let trace = rng.uuid();
            for n in 0..=rng.next_u64() % 3 {
                let id = if n == 0 { trace } else { rng.uuid() };
                let meta: std::collections::BTreeMap<Arc<str>, Arc<str>> = (0..rng.next_u64() % 3)
                    .map(|_| {
                        let (k, v) = (rng.next_u64() % 3, rng.next_u64() % 3);
                        (Arc::from(format!("k{k}")), Arc::from(format!("v{v}")))
                    })
                    .collect();
                ws.insert_run(Run {
                    id,
                    trace_id: trace,
                    parent_run_id: (n > 0).then_some(trace),
                    session_id: session,
                    name: "r".into(),
                    run_type: "chain".into(),
                    start_time: rng.next_u64() as i64 % 1000,
                    end_time: None,
                    status: "success".into(),
                    error: None,
                    metadata: meta.into_iter().collect(),
                    tags: Box::new([]),
                    inputs: None,
                    outputs: None,
                });
            }
        }
    }

    fn scanned(q: &RunQuery, ws: &Workspace) -> Vec<Uuid> {
        let mut all: Vec<&Run> = ws.runs.values().filter(|r| q.keeps(ws, r)).collect();
        all.sort_unstable_by_key(|r| (r.start_time, r.id));
        all.iter().rev().map(|r| r.id).collect()
    }

    #[test]
    fn a_selector_reads_the_index_and_finds_what_a_full_scan_finds() {
        let (mut rng, session, mut ws) = (Rng::new(7), Uuid::from_u128(1), Workspace::default());
        let selectors = [
            r#"and(eq(metadata_key, "k1"), eq(metadata_value, "v2"))"#,
            r#"and(and(eq(metadata_key, "k0"), eq(metadata_value, "v0")), and(eq(metadata_key, "k2"), eq(metadata_value, "v1")))"#,
        ];
        let mut found = 0;
        for round in 0..40 {
            grow(&mut ws, &mut rng, session);
            let again = ws.runs.values().nth(round % ws.runs.len()).cloned();
            let metadata: Box<[_]> = match round % 2 {
                0 => Box::new([]),
                _ => Box::new([(Arc::from("k1"), Arc::from("v2"))]),
            };
            ws.insert_run(Run {
                metadata,
                ..again.unwrap()
            });
            if round % 4 == 3 {
                let trace = *ws.traces.keys().next().unwrap();
                assert!(ws.remove_trace(session, trace));
            }
            for (src, tree) in selectors.iter().flat_map(|s| [(s, false), (s, true)]) {
                let expr = Some(parse(src).unwrap());
                let q = match tree {
                    true => RunQuery {
                        tree_filter: expr,
                        is_root: Some(true),
                        ..Default::default()
                    },
                    false => RunQuery {
                        filter: expr,
                        ..Default::default()
                    },
                };
                assert!(q.candidates(&ws).is_some(), "{src} is read from the index");
                let ids: Vec<Uuid> = q.run(&ws).iter().map(|r| r.id).collect();
                assert_eq!(ids, scanned(&q, &ws), "{src}, tree: {tree}, round {round}");
                found += ids.len();
            }
        }
        assert!(found > 40, "the selectors matched something: {found}");
    }
}
