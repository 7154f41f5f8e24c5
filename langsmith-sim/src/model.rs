//! What the simulator stores: workspaces with their sessions (tracing projects), runs and examples.
//! Compact on purpose: a million runs must load in seconds and fit in memory comfortably.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;
use uuid::Uuid;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

pub fn to_rfc3339(t: Micros) -> String {
    match Utc.timestamp_micros(t).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => String::new(),
    }
}

/// Parses an ISO-8601 timestamp; one without an offset is taken as UTC, as LangSmith does.
pub fn parse_time(s: &str) -> Option<Micros> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: Uuid,
    pub trace_id: Uuid,
    pub parent_run_id: Option<Uuid>,
    pub session_id: Uuid,
    pub name: Arc<str>,
    pub run_type: Arc<str>,
    pub start_time: Micros,
    pub end_time: Option<Micros>,
    pub status: Arc<str>,
    pub error: Option<Arc<str>>,
    /// Metadata as key/value pairs; non-string JSON values are kept as their JSON text.
    pub metadata: Box<[(Arc<str>, Arc<str>)]>,
    pub tags: Box<[Arc<str>]>,
    pub inputs: Option<Arc<Value>>,
    pub outputs: Option<Arc<Value>>,
}

impl Run {
    pub fn is_root(&self) -> bool {
        self.id == self.trace_id
    }

    pub fn metadata_json(&self) -> Value {
        let map = self
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())));
        Value::Object(map.collect())
    }

    /// LangSmith's dotted order for a root run: start time and id.
    pub fn dotted_order(&self) -> String {
        let t = Utc.timestamp_micros(self.start_time).single().unwrap_or_default();
        format!("{}Z{}", t.format("%Y%m%dT%H%M%S%6f"), self.id)
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub name: String,
    pub start_time: Micros,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Example {
    pub id: Uuid,
    pub dataset_id: Uuid,
    pub name: String,
    pub created_at: Micros,
    /// Every state it had, oldest first (never empty): an update or a soft delete adds one, and
    /// the dataset's history (`as_of`) keeps the earlier ones.
    pub versions: Vec<ExampleVersion>,
    pub source_run_id: Option<Uuid>,
    pub source_trace_id: Option<Uuid>,
    pub source_session_id: Option<Uuid>,
}

/// One state of an example.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleVersion {
    pub at: Micros,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// A soft delete's tombstone: the example is gone from this version on, not from history.
    pub deleted: bool,
}

impl Example {
    /// Its state at `t` (`None`: latest), if it existed and was not soft-deleted then.
    pub fn as_of(&self, t: Option<Micros>) -> Option<&ExampleVersion> {
        let version = match t {
            None => self.versions.last(),
            Some(t) => self.versions.iter().rev().find(|v| v.at <= t),
        };
        version.filter(|v| !v.deleted)
    }
}

/// What `POST /runs/delete` asked for; applied only when the deletion window runs.
#[derive(Debug, Clone)]
pub enum DeleteTarget {
    Traces {
        session_id: Uuid,
        trace_ids: Vec<Uuid>,
    },
    Metadata {
        pairs: Vec<(String, String)>,
        start: Option<Micros>,
        end: Option<Micros>,
    },
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub time: Micros,
    pub operation: &'static str,
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub api_key_id: Uuid,
    pub resource_ids: Vec<Uuid>,
}

#[derive(Debug, Default)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub org_id: Uuid,
    pub sessions: Vec<Session>,
    pub runs: HashMap<Uuid, Run>,
    /// Trace id → ids of its runs (root first when loaded in order).
    pub traces: HashMap<Uuid, Vec<Uuid>>,
    pub examples: Vec<Example>,
    pub queued: Vec<DeleteTarget>,
    /// Every accepted trace-id delete request, for tests to reconcile against.
    pub delete_log: Vec<DeleteTarget>,
    pub audit: Vec<AuditEntry>,
    /// Metadata key → value → ids of the runs holding that pair: a selector's query reads the runs
    /// holding its pair instead of every run of the workspace.
    pub by_pair: HashMap<Arc<str>, HashMap<Arc<str>, HashSet<Uuid>>>,
    /// Changes to `runs` so far: what a query matched is valid while this stays the same.
    pub version: u64,
    pub recent: RecentQueries,
}

/// What recent run queries matched, by query, for the workspace's `version`: the pages after the
/// first read it instead of scanning the workspace again (a selector matching 100,000 traces is
/// read in 1,000 pages).
#[derive(Debug, Default)]
pub struct RecentQueries {
    pub version: u64,
    pub matches: HashMap<String, std::sync::Arc<Matched>>,
}

/// The runs a query matched, in its order, and the sessions they are in.
#[derive(Debug)]
pub struct Matched {
    pub ids: Vec<Uuid>,
    pub sessions: Vec<Uuid>,
}

impl Workspace {
    pub fn session(&self, id: Uuid) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    pub fn root(&self, trace_id: Uuid) -> Option<&Run> {
        self.runs.get(&trace_id).filter(|r| r.is_root())
    }

    pub fn insert_run(&mut self, run: Run) {
        match self.runs.remove(&run.id) {
            Some(old) => self.unindex(&old),
            None => {
                let entry = self.traces.entry(run.trace_id).or_default();
                if run.is_root() {
                    entry.insert(0, run.id);
                } else {
                    entry.push(run.id);
                }
            }
        }
        for (k, v) in run.metadata.iter() {
            let values = self.by_pair.entry(k.clone()).or_default();
            values.entry(v.clone()).or_default().insert(run.id);
        }
        self.runs.insert(run.id, run);
        self.version += 1;
    }

    /// Ids of the runs holding the pair.
    pub fn holding(&self, key: &str, value: &str) -> impl Iterator<Item = &Uuid> {
        self.by_pair
            .get(key)
            .and_then(|values| values.get(value))
            .into_iter()
            .flatten()
    }

    fn unindex(&mut self, run: &Run) {
        for (k, v) in run.metadata.iter() {
            if let Some(values) = self.by_pair.get_mut(k) {
                if let Some(ids) = values.get_mut(v) {
                    ids.remove(&run.id);
                    if ids.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.by_pair.remove(k);
                }
            }
        }
    }

    /// Removes a whole trace if it lives in `session_id`; returns whether anything was removed.
    pub fn remove_trace(&mut self, session_id: Uuid, trace_id: Uuid) -> bool {
        let in_session = self
            .traces
            .get(&trace_id)
            .and_then(|ids| ids.first())
            .and_then(|id| self.runs.get(id));
        if in_session.map(|r| r.session_id) != Some(session_id) {
            return false;
        }
        for id in self.traces.remove(&trace_id).unwrap_or_default() {
            if let Some(run) = self.runs.remove(&id) {
                self.unindex(&run);
            }
        }
        self.version += 1;
        true
    }
}
