//! Resolution: project names → ids (cached), project ids checked to exist (cached), and metadata
//! selectors → root trace ids through the query API. What cannot be resolved becomes a failure with
//! its reason, never a stall.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::api::{filter, Answer, LangSmith};
use crate::event::{FailReason, Request, SessionRef, Target};

/// Cache entries kept at most; past it the cache starts over.
const CACHE_MAX: usize = 10_000;

#[derive(Debug, Default, PartialEq)]
pub struct Resolved {
    /// Distinct trace ids to delete, per project.
    pub sessions: BTreeMap<Uuid, BTreeSet<Uuid>>,
    pub failures: Vec<Unresolved>,
    /// Selectors that matched no trace, with the project they were scoped to.
    pub nothing_found: Vec<Option<Uuid>>,
}

#[derive(Debug, PartialEq)]
pub struct Unresolved {
    pub session_id: Option<Uuid>,
    pub trace_ids: Vec<Uuid>,
    pub reason: FailReason,
    pub detail: String,
}

pub struct Resolver {
    ttl: Duration,
    names: Mutex<HashMap<(String, String), (Uuid, Instant)>>,
    known: Mutex<HashMap<(String, Uuid), Instant>>,
}

fn rejected(what: &str, a: &Answer) -> Unresolved {
    Unresolved {
        session_id: None,
        trace_ids: Vec::new(),
        reason: FailReason::RejectedByApi,
        detail: format!("LangSmith answered HTTP {} to {what}", a.status.as_u16()),
    }
}

impl Resolver {
    pub fn new(ttl: Duration) -> Resolver {
        Resolver { ttl, names: Mutex::default(), known: Mutex::default() }
    }

    /// The id of a project, if it exists: `Ok(None)` for an unknown one.
    async fn session(&self, api: &LangSmith, session: &SessionRef) -> Result<Option<Uuid>, Answer> {
        let ws = api.alias().to_owned();
        let now = Instant::now();
        match session {
            SessionRef::Id(id) => {
                let key = (ws, *id);
                if self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&key).is_some_and(|t| now.duration_since(*t) < self.ttl) {
                    return Ok(Some(*id));
                }
                let exists = api.session_exists(*id).await?;
                if exists {
                    let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                    if known.len() >= CACHE_MAX {
                        known.clear();
                    }
                    known.insert(key, now);
                }
                Ok(exists.then_some(*id))
            }
            SessionRef::Name(name) => {
                let key = (ws, name.clone());
                if let Some((id, at)) = self.names.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
                    if now.duration_since(*at) < self.ttl {
                        return Ok(Some(*id));
                    }
                }
                let found = api.session_by_name(name).await?;
                if let Some(id) = found {
                    let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
                    if names.len() >= CACHE_MAX {
                        names.clear();
                    }
                    names.insert(key, (id, now));
                }
                Ok(found)
            }
        }
    }

    pub async fn resolve(&self, api: &LangSmith, req: &Request) -> Resolved {
        let mut out = Resolved::default();
        for target in &req.targets {
            match target {
                Target::Explicit { session, trace_ids } => match self.session(api, session).await {
                    Ok(Some(id)) => out.sessions.entry(id).or_default().extend(trace_ids.iter().copied()),
                    Ok(None) => out.failures.push(Unresolved {
                        session_id: match session {
                            SessionRef::Id(id) => Some(*id),
                            SessionRef::Name(_) => None,
                        },
                        trace_ids: trace_ids.clone(),
                        reason: FailReason::UnknownSession,
                        detail: "no such project in the workspace".into(),
                    }),
                    Err(a) => out.failures.push(Unresolved { trace_ids: trace_ids.clone(), ..rejected("the project lookup", &a) }),
                },
                Target::Selector { session, metadata, start_time, end_time } => {
                    let scope = match session {
                        None => None,
                        Some(s) => match self.session(api, s).await {
                            Ok(Some(id)) => Some(id),
                            Ok(None) => {
                                out.failures.push(Unresolved {
                                    session_id: None,
                                    trace_ids: Vec::new(),
                                    reason: FailReason::UnknownSession,
                                    detail: "the selector names no project of the workspace".into(),
                                });
                                continue;
                            }
                            Err(a) => {
                                out.failures.push(rejected("the project lookup", &a));
                                continue;
                            }
                        },
                    };
                    let sessions = match scope {
                        Some(id) => Ok(vec![id]),
                        None => api.all_sessions().await,
                    };
                    let expr = filter::metadata_all(metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    let found = match sessions {
                        Ok(s) => api.root_traces(&s, &expr, *start_time, *end_time).await,
                        Err(a) => Err(a),
                    };
                    match found {
                        Ok(found) if found.is_empty() => out.nothing_found.push(scope),
                        Ok(found) => {
                            for (s, t) in found {
                                out.sessions.entry(s).or_default().insert(t);
                            }
                        }
                        Err(a) => out.failures.push(Unresolved { session_id: scope, ..rejected("the trace query", &a) }),
                    }
                }
            }
        }
        out
    }
}
