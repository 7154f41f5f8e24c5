//! The dataset examples of a request: those it names by id, those made from its traces (found by
//! the workspace's shared scan), and those its selectors reach (whose metadata holds every pair of
//! a selector, whatever its project and time range, which are the traces'), hard-deleted with the
//! workspace's other requests' in calls of at most 1000 and read back at once, since a hard delete
//! takes effect at once. It runs in the request's resolution task, after its traces, within its
//! workspace's resolution permits; its events go out with the request's other events, so the
//! input event is done only once they are acknowledged, and go out even if the event was abandoned
//! meanwhile (a replay's search would not find the examples again). A workspace with
//! `erase_examples = false` is neither searched nor scanned; examples named by id are erased there
//! too. What a search or scan found is recorded in the journal before its hard delete, and what other runs of the event
//! recorded (read after the search) is erased and named as well: a replay's search finds nothing
//! once the examples are nulled.

mod shared;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::{LangSmith, Refusal, Refused, EXAMPLES_PER_DELETE, MAX_EXAMPLES};
use crate::event::{ExamplesErased, ExamplesFailed, FailReason, Request, Target};
use crate::intake::journal::Recorder;
use crate::output::{parts_of, Output};
pub use shared::{Shared, Sources};

/// What became of the examples a request reached.
#[derive(Debug, Default, PartialEq)]
pub struct Erased {
    /// Hard-deleted and read back without inputs, outputs or metadata.
    pub erased: Vec<Uuid>,
    /// Not erased, or not proven erased, with why (a refused search names no ids).
    pub failed: Vec<(Vec<Uuid>, Refusal)>,
}

/// Why `what` was refused, for examples (which have no project: a 404 is no `unknown_session`).
fn refusal(what: &str, refused: &Refused) -> Refusal {
    let mut why = refused.refusal(what);
    if why.reason == FailReason::UnknownSession {
        why.reason = FailReason::RejectedByApi;
    }
    why
}

/// The examples a request reached through its traces: those made from one of them, as the
/// workspace's scan found them, or why the scan was refused.
#[derive(Debug, Default)]
pub struct MadeFrom {
    pub examples: BTreeSet<Uuid>,
    pub refused: Option<Refused>,
}

impl MadeFrom {
    /// Adds the examples `sources` says were made from `traces`; notes a refused scan.
    pub fn add<'a>(&mut self, sources: &Result<Arc<Sources>, Refused>, traces: impl IntoIterator<Item = &'a Uuid>) {
        match sources {
            Ok(sources) => traces.into_iter().for_each(|t| self.examples.extend(sources.of(t))),
            Err(refused) => self.refused = Some(refused.clone()),
        }
    }
}

/// Finds, hard-deletes and reads back (both with the other requests' of the workspace asking
/// meanwhile) the examples `targets` (those of `req`, which the book keeps without them) name or
/// reach, with those `made_from` its traces and those `journal` recalls.
pub async fn erase(
    api: &LangSmith,
    shared: &Shared,
    req: &Request,
    (targets, made_from): (&[Target], MadeFrom),
    journal: &mut Recorder,
) -> Erased {
    let mut out = Erased::default();
    if let Some(refused) = &made_from.refused {
        let why = refusal("the scan for examples made from the request's traces", refused);
        out.failed.push((Vec::new(), why));
    }
    let mut searched = !made_from.examples.is_empty();
    let mut found = made_from.examples;
    for target in targets {
        let metadata = match target {
            Target::Examples { example_ids } => {
                found.extend(example_ids.iter().copied());
                continue;
            }
            Target::Selector { metadata, .. } if api.erases_examples() => metadata,
            _ => continue,
        };
        if found.len() >= MAX_EXAMPLES {
            tracing::warn!(workspace = %api.alias(), examples = found.len(),
                "a request reaches more dataset examples than one request erases; its other selectors are not searched");
            break;
        }
        searched = true;
        match shared.search(metadata.clone()).await {
            Ok((ids, more)) => {
                if more {
                    tracing::warn!(workspace = %api.alias(), examples = ids.len(),
                        "a selector reaches more dataset examples than one request erases; the rest are left");
                }
                found.extend(ids);
            }
            Err(refused) => out.failed.push((Vec::new(), refusal("the examples search", &refused))),
        }
    }
    if searched {
        // After the search: an example another run hard-deleted meanwhile was recorded before.
        found.append(&mut journal.recall().await.examples);
    }
    let found: Vec<Uuid> = found.into_iter().collect();
    if searched {
        for chunk in found.chunks(EXAMPLES_PER_DELETE) {
            journal.examples(chunk).await;
        }
    }
    if !found.is_empty() {
        let Erased { erased, failed } = shared.erase(found.clone()).await;
        out.erased = erased;
        out.failed.extend(failed);
    }
    if !found.is_empty() || !out.failed.is_empty() {
        let failed: usize = out.failed.iter().map(|(ids, _)| ids.len()).sum();
        tracing::info!(request_id = %req.request_id, workspace = %req.workspace, found = found.len(),
            erased = out.erased.len(), failed, "dataset examples");
    }
    out
}

/// The events of `erased`: parts of at most `max_batch` ids each. Nothing when no example was
/// reached.
pub fn events(req: &Request, erased: Erased, max_batch: usize, now: DateTime<Utc>) -> Vec<Output> {
    let mut out = Vec::new();
    let erased_parts = parts_of(&erased.erased, max_batch).filter(|(chunk, _)| !chunk.is_empty());
    for (chunk, (part, parts)) in erased_parts {
        out.push(Output::ExamplesErased(ExamplesErased {
            request_id: req.request_id.clone(),
            workspace: req.workspace.clone(),
            example_ids: chunk.to_vec(),
            part,
            parts,
            erased_at: now,
            source: req.source.clone(),
        }));
    }
    for (ids, why) in erased.failed {
        for (chunk, (part, parts)) in parts_of(&ids, max_batch) {
            out.push(Output::ExamplesFailed(ExamplesFailed {
                request_id: req.request_id.clone(),
                workspace: req.workspace.clone(),
                example_ids: chunk.to_vec(),
                part,
                parts,
                reason: why.reason,
                detail: why.detail.clone(),
                failed_at: now,
                source: req.source.clone(),
            }));
        }
    }
    out
}
