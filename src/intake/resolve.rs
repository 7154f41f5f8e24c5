//! Resolution: project names → ids (cached), project ids checked to exist (cached), and metadata
//! selectors → root trace ids through the query API. What cannot be resolved becomes a failure with
//! its reason, never a stall.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::discovery::{Discovery, Matches};
use crate::api::{filter, Clients, Found, LangSmith, Refused, Search};
use crate::config::QueryApi;
use crate::event::{FailReason, SessionRef, Target};

/// Where a selector's traces go while it is being resolved, a page (at most 1,000) at a time: a
/// selector matching a million traces is never held whole. `page` hands a page on; `room` returns
/// when there is room for more, and is awaited only before a further page is fetched (a selector's
/// last page never waits: its event could not finish, and what it holds could not be freed). Both
/// return `false` when no more is wanted (the event was forgotten): the selector stops there.
///
/// `recall` hands on what other runs of the event recorded for the target (`intake/journal.rs`)
/// and was not handed on yet: `None` when there is none, else whether more is wanted. It is asked
/// before the search and after it. Pages carry the index of their target in the request.
pub trait Pages: Send {
    fn recall(&mut self, target: usize) -> impl std::future::Future<Output = Option<bool>> + Send;
    fn page(
        &mut self,
        target: usize,
        traces: BTreeMap<Uuid, BTreeSet<Uuid>>,
    ) -> impl std::future::Future<Output = bool> + Send;
    fn room(&mut self) -> impl std::future::Future<Output = bool> + Send;
}

/// Cache entries kept per workspace at most; past it the workspace's cache starts over.
const CACHE_MAX: usize = 10_000;

#[derive(Debug, Default, PartialEq)]
pub struct Resolved {
    /// Distinct trace ids to delete, per project.
    pub sessions: BTreeMap<Uuid, BTreeSet<Uuid>>,
    pub failures: Vec<Unresolved>,
    /// Selectors that matched no trace, with the project they were scoped to.
    pub nothing_found: Vec<Option<Uuid>>,
    /// The events of the dataset examples the request named or reached (the last piece of a
    /// resolution only).
    pub example_events: Vec<crate::output::Output>,
}

#[derive(Debug, PartialEq)]
pub struct Unresolved {
    pub session_id: Option<Uuid>,
    pub trace_ids: Vec<Uuid>,
    pub reason: FailReason,
    pub detail: String,
}

/// How long "no such project" is believed: a project created a moment later must not fail requests
/// for the whole cache lifetime.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

type Lookup = Arc<OnceCell<(Option<Uuid>, Instant)>>;

pub struct Resolver {
    ttl: Duration,
    /// The query API selectors are searched through (`verifier.query_api`: whether the install
    /// has v2).
    how: QueryApi,
    /// How far back a selector without `start_time` searches (its explicit lower bound).
    lookback: Duration,
    /// workspace → project → one shared lookup: concurrent requests for the same project wait for a
    /// single call instead of each spending the rate limit. Keyed by workspace first, so that the
    /// lookup of every event under a backlog (`cached`) builds no key.
    cache: Mutex<HashMap<String, HashMap<SessionRef, Lookup>>>,
    clients: Clients,
    /// Per workspace, its discovery rounds (started on first use).
    discovery: Mutex<HashMap<String, Discovery>>,
}

fn rejected(what: &str, a: &Refused) -> Unresolved {
    let why = a.refusal(what);
    Unresolved {
        session_id: None,
        trace_ids: Vec::new(),
        reason: why.reason,
        detail: why.detail,
    }
}

impl Resolver {
    pub fn new(ttl: Duration, lookback: Duration, how: QueryApi, clients: Clients) -> Resolver {
        Resolver {
            ttl,
            how,
            lookback,
            cache: Mutex::default(),
            clients,
            discovery: Mutex::default(),
        }
    }

    /// The traces `search` finds in the `scope` project (or every project), searched together with
    /// other selectors of the workspace waiting at the same time (`intake/discovery.rs`).
    fn matches<'a>(&self, api: &'a LangSmith, scope: Option<Uuid>, search: Search) -> Matches<'a> {
        let alias = api.alias();
        let discovery = (self.discovery.lock().unwrap_or_else(|e| e.into_inner()))
            .entry(alias.to_owned())
            .or_insert_with(|| Discovery::spawn(self.clients.clone(), alias.to_owned()))
            .clone();
        discovery.find(api, self.how, scope, search)
    }

    fn fresh(&self, entry: &Lookup) -> bool {
        match entry.get() {
            None => true,
            Some((found, at)) => at.elapsed() < if found.is_some() { self.ttl } else { NEGATIVE_TTL },
        }
    }

    /// The id of a project, if it exists: `Ok(None)` for an unknown one.
    async fn session(&self, api: &LangSmith, session: &SessionRef) -> Result<Option<Uuid>, Refused> {
        let entry = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let projects = cache.entry(api.alias().to_owned()).or_default();
            match projects.get(session) {
                Some(e) if self.fresh(e) => e.clone(),
                _ => {
                    if projects.len() >= CACHE_MAX {
                        projects.clear();
                    }
                    let e = Lookup::default();
                    projects.insert(session.clone(), e.clone());
                    e
                }
            }
        };
        let (found, _) = entry
            .get_or_try_init(|| async {
                let found = match session {
                    SessionRef::Id(id) if self.listed(api, *id).await => Some(*id),
                    SessionRef::Id(id) => api.session_exists(*id).await?.then_some(*id),
                    SessionRef::Name(name) => api.session_by_name(name).await?,
                };
                Ok::<_, Refused>((found, Instant::now()))
            })
            .await?;
        Ok(*found)
    }

    /// Whether project `id` is in the workspace's list of projects. With v2 checks, a delete's look
    /// for misplaced ids lists them anyway (`api/owners.rs`, a call per 100 projects, kept for a
    /// minute): a backlog over many projects then needs that one listing, not a lookup per project
    /// at `sessions_per_second`, before its first deletes. A project not in it (created since, or
    /// the listing refused) is looked up on its own.
    async fn listed(&self, api: &LangSmith, id: Uuid) -> bool {
        self.how == QueryApi::V2 && api.projects().await.is_ok_and(|list| list.contains(&id))
    }

    /// Resolves without any call when every target is explicit and its project is cached: the common
    /// case under load, handled in line instead of in a task.
    pub fn cached(&self, api: &LangSmith, targets: &[Target]) -> Option<Resolved> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let projects = cache.get(api.alias())?;
        let mut out = Resolved::default();
        for target in targets {
            let Target::Explicit { session, trace_ids } = target else {
                return None;
            };
            let entry = projects.get(session)?;
            let (Some(id), at) = entry.get()? else { return None };
            if at.elapsed() >= self.ttl {
                return None;
            }
            out.sessions.entry(*id).or_default().extend(trace_ids.iter().copied());
        }
        Some(out)
    }

    /// Looks up the projects `targets` name (into the cache), so that an event waits for them
    /// before it takes a resolution permit: a backlog's events do not hold the permits while the
    /// lookups of other projects go at `sessions_per_second`, and each project's events reach the
    /// coalescer together once its lookup is back. A refused lookup is asked again by `resolve`.
    pub async fn look_up(&self, api: &LangSmith, targets: &[Target]) {
        for target in targets {
            let session = match target {
                Target::Explicit { session, .. } => session,
                Target::Selector { session: Some(s), .. } => s,
                Target::Selector { session: None, .. } | Target::Examples { .. } => continue,
            };
            let _ = self.session(api, session).await;
        }
    }

    /// Resolves `targets`: a selector's traces go to `pages` as they are found, the rest is
    /// returned (explicit ids, failures, selectors that found nothing).
    pub async fn resolve(&self, api: &LangSmith, targets: &[Target], pages: &mut impl Pages) -> Resolved {
        let mut out = Resolved::default();
        for (index, target) in targets.iter().enumerate() {
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
                    Err(a) => out.failures.push(Unresolved {
                        trace_ids: trace_ids.clone(),
                        ..rejected("the project lookup", &a)
                    }),
                },
                Target::Selector { .. } => self.selector(api, (index, target), &mut out, pages).await,
                // Erased after the traces (`intake/examples.rs`).
                Target::Examples { .. } => {}
            }
        }
        out
    }

    /// Resolves a metadata selector (the request's target `index`) into `out`: its traces, a
    /// failure, or "nothing found". What earlier runs of the event recorded is recalled before the
    /// search, and again after it: a trace deleted by another run while this one searched (a replica
    /// that still worked on the partition) is recorded before its delete, so the second read finds
    /// its record. A project LangSmith refuses to search fails on its own (`forbidden`), and the
    /// others are still searched; "nothing found" is said only when every project could be searched.
    async fn selector(
        &self,
        api: &LangSmith,
        (index, target): (usize, &Target),
        out: &mut Resolved,
        pages: &mut impl Pages,
    ) {
        let before = match pages.recall(index).await {
            Some(false) => return,
            before => before.is_some(),
        };
        let nothing = self.search(api, (index, target), before, out, pages).await;
        let after = match pages.recall(index).await {
            Some(false) => return,
            after => after.is_some(),
        };
        if let Some(scope) = nothing.filter(|_| !after) {
            out.nothing_found.push(scope);
        }
    }

    /// Searches a selector's traces, handing them to `pages` (after what was `recalled`); failures go
    /// to `out`. Returns the project it was scoped to when every project was searched and nothing
    /// was found nor recalled.
    async fn search(
        &self,
        api: &LangSmith,
        (index, target): (usize, &Target),
        recalled: bool,
        out: &mut Resolved,
        pages: &mut impl Pages,
    ) -> Option<Option<Uuid>> {
        let Target::Selector {
            session,
            metadata,
            start_time,
            end_time,
            root_only,
        } = target
        else {
            return None;
        };
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
                    return None;
                }
                Err(a) => {
                    out.failures.push(rejected("the project lookup", &a));
                    return None;
                }
            },
        };
        // Config validation keeps the lookback within ten years.
        let lookback = chrono::TimeDelta::from_std(self.lookback).unwrap_or(chrono::TimeDelta::days(400));
        let search = Search {
            pairs: metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            expr: filter::metadata_all(metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            root_only: *root_only,
            start: start_time.unwrap_or_else(|| Utc::now() - lookback),
            end: *end_time,
        };
        let matches = self.matches(api, scope, search);
        let nothing = stream(matches, (index, scope), recalled, out, pages).await;
        nothing.then_some(scope)
    }
}

/// Hands a selector's pages on as they come, and records the projects LangSmith refused to search.
/// True when every project could be searched and none matched (nor was anything `recalled`).
async fn stream(
    mut matches: Matches<'_>,
    (index, scope): (usize, Option<Uuid>),
    recalled: bool,
    out: &mut Resolved,
    pages: &mut impl Pages,
) -> bool {
    let (mut found, mut forbidden) = (recalled, false);
    loop {
        if found && matches.more() && !pages.room().await {
            return false;
        }
        match matches.next().await {
            Ok(None) => break,
            Ok(Some(Found::Traces(traces))) if traces.is_empty() => {}
            Ok(Some(Found::Traces(traces))) => {
                found = true;
                let mut page: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
                for (s, t) in traces {
                    page.entry(s).or_default().insert(t);
                }
                if !pages.page(index, page).await {
                    return false;
                }
            }
            // Runs are asked for when selectors are searched together only.
            Ok(Some(Found::Runs(_))) => {}
            Ok(Some(Found::Forbidden(project))) => {
                forbidden = true;
                out.failures.push(Unresolved {
                    session_id: Some(project),
                    trace_ids: Vec::new(),
                    reason: FailReason::Forbidden,
                    detail: "LangSmith answered HTTP 403 to the trace query of this project".into(),
                });
            }
            // The pages handed on already are deleted; the selector fails for the rest.
            Err(a) => {
                out.failures.push(Unresolved {
                    session_id: scope,
                    ..rejected("the trace query", &a)
                });
                return false;
            }
        }
    }
    !found && !forbidden
}
