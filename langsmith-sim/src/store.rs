//! The simulator's state and the operations on it that are not tied to one HTTP shape:
//! workspaces and keys, bulk loading and generation, queued deletes and the deletion window.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{now_micros, parse_time, DeleteTarget, Example, ExampleVersion, Micros, Run, Session, Workspace};
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: Uuid,
    pub workspaces: Vec<Uuid>,
    /// An organization-scoped service key: workspace requests must name the workspace.
    pub org_scoped: bool,
}

pub struct State {
    pub workspaces: HashMap<Uuid, Workspace>,
    pub keys: HashMap<String, KeyInfo>,
    pub rng: Rng,
    /// Trace ids and sessions whose deletes are accepted but never take effect.
    pub never_traces: HashSet<Uuid>,
    pub never_sessions: HashSet<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    pub id: Option<Uuid>,
    #[serde(default)]
    pub name: String,
    pub org_id: Option<Uuid>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default)]
    pub org_scoped_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub id: Option<Uuid>,
    pub name: String,
    pub start_time: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    pub id: Option<Uuid>,
    pub trace_id: Option<Uuid>,
    pub parent_run_id: Option<Uuid>,
    pub session_id: Uuid,
    pub name: Option<String>,
    pub run_type: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub status: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExample {
    pub id: Option<Uuid>,
    pub dataset_id: Uuid,
    pub name: Option<String>,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
    pub metadata: Option<serde_json::Map<String, Value>>,
    pub source_run_id: Option<Uuid>,
    pub source_trace_id: Option<Uuid>,
    pub source_session_id: Option<Uuid>,
    pub created_at: Option<String>,
    /// Earlier states, oldest first: the fields above are the latest, from `modified_at` (default:
    /// the last earlier state's time plus a second, or `created_at`).
    #[serde(default)]
    pub history: Vec<NewVersion>,
    pub modified_at: Option<String>,
}

/// An earlier state of a new example.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    pub at: String,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// Server-side generation of many traces, for loads too large to send as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub session_id: Uuid,
    pub traces: usize,
    #[serde(default = "one")]
    pub runs_per_trace: usize,
    /// Start time of the first trace (default: now minus `spread_seconds`).
    pub start_time: Option<String>,
    /// Traces are spread evenly over this many seconds.
    #[serde(default)]
    pub spread_seconds: u64,
    /// Each run gets `{key: format!("{prefix}{n % distinct}")}` for every entry here (child runs
    /// only, for an entry with `children_only`).
    #[serde(default)]
    pub metadata: Vec<MetadataTemplate>,
    #[serde(default)]
    pub return_ids: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataTemplate {
    pub key: String,
    pub prefix: String,
    /// How many distinct values (default: one per trace).
    pub distinct: Option<usize>,
    /// The pair goes on the trace's child runs only (with `runs_per_trace` ≥ 2), as when personal
    /// data reaches a tool call but not the root run.
    #[serde(default)]
    pub children_only: bool,
}

fn one() -> usize {
    1
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct WindowReport {
    pub applied_traces: u64,
    pub skipped_traces: u64,
}

pub fn metadata_pairs(map: &serde_json::Map<String, Value>) -> Box<[(Arc<str>, Arc<str>)]> {
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (Arc::from(k.as_str()), Arc::from(text))
        })
        .collect()
}

impl State {
    pub fn new(seed: u64) -> Self {
        State {
            workspaces: HashMap::new(),
            keys: HashMap::new(),
            rng: Rng::new(seed),
            never_traces: HashSet::new(),
            never_sessions: HashSet::new(),
        }
    }

    /// Creates a workspace (or adds keys to an existing one). A personal key (`api_keys`) belongs to
    /// one workspace: naming one already bound to another is an error, not a silent rebinding.
    pub fn create_workspace(&mut self, new: NewWorkspace) -> Result<Uuid, String> {
        let id = new.id.unwrap_or_else(|| self.rng.uuid());
        if let Some(taken) = new.api_keys.iter().find(|k| {
            self.keys
                .get(*k)
                .is_some_and(|info| info.org_scoped || info.workspaces.iter().any(|w| *w != id))
        }) {
            let n = taken.len();
            return Err(format!(
                "api key of {n} characters is already bound to another workspace (or is organization-scoped): a personal key serves one workspace"
            ));
        }
        let org_id = new.org_id.unwrap_or_else(|| self.rng.uuid());
        let name = if new.name.is_empty() {
            format!("workspace-{id}")
        } else {
            new.name
        };
        let keys = new.api_keys.into_iter().map(|k| (k, false));
        for (key, org_scoped) in keys.chain(new.org_scoped_keys.into_iter().map(|k| (k, true))) {
            let key_id = self.rng.uuid();
            let info = self.keys.entry(key).or_insert(KeyInfo {
                id: key_id,
                workspaces: vec![],
                org_scoped,
            });
            if !info.workspaces.contains(&id) {
                info.workspaces.push(id);
            }
        }
        self.workspaces.entry(id).or_insert_with(|| Workspace {
            id,
            name,
            org_id,
            ..Default::default()
        });
        Ok(id)
    }

    pub fn add_session(&mut self, ws: Uuid, new: NewSession) -> Result<Uuid, String> {
        let id = new.id.unwrap_or_else(|| self.rng.uuid());
        let start_time = time_or_now(new.start_time.as_deref())?;
        let w = self.workspaces.get_mut(&ws).ok_or("no such workspace")?;
        if w.session(id).is_none() {
            w.sessions.push(Session {
                id,
                name: new.name,
                start_time,
                description: new.description,
            });
        }
        Ok(id)
    }

    pub fn add_run(&mut self, ws: Uuid, new: NewRun) -> Result<Uuid, String> {
        let id = new.id.unwrap_or_else(|| self.rng.uuid());
        let run = Run {
            id,
            trace_id: new.trace_id.unwrap_or(id),
            parent_run_id: new.parent_run_id,
            session_id: new.session_id,
            name: Arc::from(new.name.as_deref().unwrap_or("run")),
            run_type: Arc::from(new.run_type.as_deref().unwrap_or("chain")),
            start_time: time_or_now(new.start_time.as_deref())?,
            end_time: new
                .end_time
                .as_deref()
                .map(|t| parse_time(t).ok_or(format!("bad end_time {t:?}")))
                .transpose()?,
            status: Arc::from(new.status.as_deref().unwrap_or("success")),
            error: new.error.map(Arc::from),
            metadata: metadata_pairs(&new.metadata),
            tags: new.tags.into_iter().map(Arc::from).collect(),
            inputs: new.inputs.map(Arc::new),
            outputs: new.outputs.map(Arc::new),
        };
        let w = self.workspaces.get_mut(&ws).ok_or("no such workspace")?;
        if w.session(run.session_id).is_none() {
            return Err(format!("run {id}: unknown session {}", run.session_id));
        }
        w.insert_run(run);
        Ok(id)
    }

    pub fn add_example(&mut self, ws: Uuid, new: NewExample) -> Result<Uuid, String> {
        let id = new.id.unwrap_or_else(|| self.rng.uuid());
        let mut versions = Vec::with_capacity(new.history.len() + 1);
        for v in new.history {
            let at = parse_time(&v.at).ok_or(format!("bad history time {:?}", v.at))?;
            let (inputs, outputs, metadata, deleted) = (v.inputs, v.outputs, v.metadata, false);
            versions.push(ExampleVersion {
                at,
                inputs,
                outputs,
                metadata,
                deleted,
            });
        }
        let created_at = match versions.first() {
            Some(v) => v.at,
            None => time_or_now(new.created_at.as_deref())?,
        };
        let latest_at = match (new.modified_at.as_deref(), versions.last()) {
            (Some(t), _) => parse_time(t).ok_or(format!("bad modified_at {t:?}"))?,
            (None, Some(v)) => v.at + 1_000_000,
            (None, None) => created_at,
        };
        versions.push(ExampleVersion {
            at: latest_at,
            inputs: new.inputs.or(Some(Value::Object(Default::default()))),
            outputs: new.outputs,
            metadata: new.metadata,
            deleted: false,
        });
        let w = self.workspaces.get_mut(&ws).ok_or("no such workspace")?;
        w.examples.push(Example {
            id,
            dataset_id: new.dataset_id,
            name: new.name.unwrap_or_else(|| format!("#{id}")),
            created_at,
            versions,
            source_run_id: new.source_run_id,
            source_trace_id: new.source_trace_id,
            source_session_id: new.source_session_id,
        });
        Ok(id)
    }

    /// Generates `traces` traces of `runs_per_trace` runs each; returns (runs made, trace ids if asked).
    pub fn generate(&mut self, ws: Uuid, g: Generate) -> Result<(usize, Vec<Uuid>), String> {
        let spread = g.spread_seconds as i64 * 1_000_000;
        let first = match g.start_time.as_deref() {
            Some(t) => parse_time(t).ok_or(format!("bad start_time {t:?}"))?,
            None => now_micros() - spread,
        };
        let step = if g.traces > 1 {
            spread / (g.traces as i64 - 1).max(1)
        } else {
            0
        };
        let w = self.workspaces.get_mut(&ws).ok_or("no such workspace")?;
        if w.session(g.session_id).is_none() {
            return Err(format!("unknown session {}", g.session_id));
        }
        let [root_name, child_name, chain, llm, ok]: [Arc<str>; 5] =
            ["chat", "llm-call", "chain", "llm", "success"].map(Arc::from);
        let keys: Vec<Arc<str>> = g.metadata.iter().map(|m| Arc::from(m.key.as_str())).collect();
        w.runs.reserve(g.traces * g.runs_per_trace);
        w.traces.reserve(g.traces);
        let mut ids = Vec::with_capacity(if g.return_ids { g.traces } else { 0 });
        for n in 0..g.traces {
            let trace_id = self.rng.uuid();
            let start = first + step * n as i64;
            let metadata: Box<[(Arc<str>, Arc<str>)]> = g
                .metadata
                .iter()
                .zip(&keys)
                .map(|(m, k)| {
                    (
                        k.clone(),
                        Arc::from(format!("{}{}", m.prefix, n % m.distinct.unwrap_or(usize::MAX).max(1))),
                    )
                })
                .collect();
            let on_root: Box<[(Arc<str>, Arc<str>)]> = (metadata.iter().zip(&g.metadata))
                .filter(|(_, m)| !m.children_only)
                .map(|(pair, _)| pair.clone())
                .collect();
            for r in 0..g.runs_per_trace.max(1) {
                let id = if r == 0 { trace_id } else { self.rng.uuid() };
                w.insert_run(Run {
                    id,
                    trace_id,
                    parent_run_id: (r > 0).then_some(trace_id),
                    session_id: g.session_id,
                    name: if r == 0 { root_name.clone() } else { child_name.clone() },
                    run_type: if r == 0 { chain.clone() } else { llm.clone() },
                    start_time: start + r as i64,
                    end_time: Some(start + 1_000_000),
                    status: ok.clone(),
                    error: None,
                    metadata: if r == 0 { on_root.clone() } else { metadata.clone() },
                    tags: Box::new([]),
                    inputs: None,
                    outputs: None,
                });
            }
            if g.return_ids {
                ids.push(trace_id);
            }
        }
        Ok((g.traces * g.runs_per_trace.max(1), ids))
    }

    /// The deletion window: applies every queued delete, except those configured never to happen.
    pub fn run_window(&mut self) -> WindowReport {
        let mut report = WindowReport::default();
        for w in self.workspaces.values_mut() {
            for target in std::mem::take(&mut w.queued) {
                match target {
                    DeleteTarget::Traces { session_id, trace_ids } => {
                        for t in trace_ids {
                            if self.never_sessions.contains(&session_id) || self.never_traces.contains(&t) {
                                report.skipped_traces += 1;
                            } else if w.remove_trace(session_id, t) {
                                report.applied_traces += 1;
                            }
                        }
                    }
                    DeleteTarget::Metadata { pairs, start, end } => {
                        for (session_id, t) in metadata_matches(w, &pairs, start, end) {
                            if self.never_sessions.contains(&session_id) || self.never_traces.contains(&t) {
                                report.skipped_traces += 1;
                            } else if w.remove_trace(session_id, t) {
                                report.applied_traces += 1;
                            }
                        }
                    }
                }
            }
        }
        report
    }
}

/// Root runs with any of the pairs (OR), started inside [start, end]; all roots when no pairs.
fn metadata_matches(
    w: &Workspace,
    pairs: &[(String, String)],
    start: Option<Micros>,
    end: Option<Micros>,
) -> Vec<(Uuid, Uuid)> {
    w.runs
        .values()
        .filter(|r| r.is_root())
        .filter(|r| start.is_none_or(|s| r.start_time >= s) && end.is_none_or(|e| r.start_time <= e))
        .filter(|r| {
            pairs.is_empty()
                || r.metadata
                    .iter()
                    .any(|(k, v)| pairs.iter().any(|(pk, pv)| **k == **pk && **v == **pv))
        })
        .map(|r| (r.session_id, r.trace_id))
        .collect()
}

fn time_or_now(t: Option<&str>) -> Result<Micros, String> {
    match t {
        Some(t) => parse_time(t).ok_or(format!("bad timestamp {t:?}")),
        None => Ok(now_micros()),
    }
}
