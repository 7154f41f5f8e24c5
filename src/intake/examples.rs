//! The dataset examples of a request: those it names by id, and those its selectors reach (whose
//! metadata holds every pair of a selector, whatever its project and time range, which are the
//! traces'), hard-deleted in calls of at most 1000 and read back at once, since a hard delete takes
//! effect at once. It runs in the request's resolution task, after its traces, within its
//! workspace's resolution permits; its events go out with the request's other events, so the
//! input event is done only once they are acknowledged, and go out even if the event was abandoned
//! meanwhile (a replay's search would not find the examples again). A workspace with
//! `erase_examples = false` is not searched; examples named by id are erased there too. What a
//! search found is recorded in the journal before its hard delete, and what other runs of the event
//! recorded (read after the search) is erased and named as well: a replay's search finds nothing
//! once the examples are nulled.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::{LangSmith, Refusal, Refused, EXAMPLES_PER_DELETE, MAX_EXAMPLES};
use crate::event::{ExamplesErased, ExamplesFailed, FailReason, Request, Target};
use crate::intake::journal::Recorder;
use crate::output::{parts_of, Output};

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

/// Finds, hard-deletes and reads back the examples `targets` (those of `req`, which the book keeps
/// without them) name or reach, as of `now`, with those `journal` recalls.
pub async fn erase(
    api: &LangSmith,
    req: &Request,
    targets: &[Target],
    now: DateTime<Utc>,
    journal: &mut Recorder,
) -> Erased {
    let mut out = Erased::default();
    let mut found = BTreeSet::new();
    let mut searched = false;
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
        match api.examples_with(metadata, now).await {
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
    for chunk in found.chunks(EXAMPLES_PER_DELETE) {
        if searched {
            journal.examples(chunk).await;
        }
        match api.hard_delete_examples(chunk).await {
            Ok(()) => read_back(api, chunk, &mut out).await,
            Err(refused) => out
                .failed
                .push((chunk.to_vec(), refusal("the examples hard delete", &refused))),
        }
    }
    if !found.is_empty() || !out.failed.is_empty() {
        let failed: usize = out.failed.iter().map(|(ids, _)| ids.len()).sum();
        tracing::info!(request_id = %req.request_id, workspace = %req.workspace, found = found.len(),
            erased = out.erased.len(), failed, "dataset examples");
    }
    out
}

/// Sorts examples just hard-deleted into erased and, if LangSmith still returns data of them,
/// `still_present`.
async fn read_back(api: &LangSmith, ids: &[Uuid], out: &mut Erased) {
    match api.examples_holding_data(ids).await {
        Ok(held) => {
            let (left, gone): (Vec<Uuid>, Vec<Uuid>) = ids.iter().partition(|id| held.contains(id));
            out.erased.extend(gone);
            if !left.is_empty() {
                let why = Refusal {
                    reason: FailReason::StillPresent,
                    detail: "read back after the hard delete, these examples still hold data".into(),
                };
                out.failed.push((left, why));
            }
        }
        Err(refused) => {
            let mut why = refusal("the examples read-back", &refused);
            if why.reason == FailReason::RejectedByApi {
                why.reason = FailReason::CheckRejected;
            }
            out.failed.push((ids.to_vec(), why));
        }
    }
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
