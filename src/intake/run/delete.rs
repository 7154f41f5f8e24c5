//! One delete call of a batch, with the ids named with the wrong project taken out first (see
//! `api/owners.rs`): they fail as `wrong_session` instead of being "deleted" where they are not.

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use crate::api::{LangSmith, Refusal};
use crate::event::FailReason;
use crate::intake::Intake;

/// Deletes `ids` of `session`; returns the ids refused for good, with why. Ids `found` in the
/// project by a query are deleted without a look.
pub(super) async fn delete(
    intake: &Intake,
    api: &LangSmith,
    (session, found): (Uuid, bool),
    ids: &[Uuid],
) -> HashMap<Uuid, Refusal> {
    if found {
        return api.delete_all(session, ids).await;
    }
    let cfg = &intake.config.verifier;
    let lookback = TimeDelta::from_std(cfg.lookback).unwrap_or(TimeDelta::days(400));
    let misplaced = match api.misplaced(cfg.query_api, session, ids, Utc::now() - lookback).await {
        Ok(m) => m,
        // The project is forbidden or gone: the delete would be refused the same way.
        Err(answer) if matches!(answer.status.as_u16(), 403 | 404) => {
            let why = answer.refusal("the project check");
            return ids.iter().map(|id| (*id, why.clone())).collect();
        }
        // Any other refusal is about the look itself (a request LangSmith does not take): the ids
        // are deleted as named rather than failed, and it is said loudly.
        Err(answer) => {
            tracing::error!(workspace = api.alias(), %session, status = answer.status.as_u16(),
                "LangSmith refused the look before a delete: deleting the ids as named");
            Vec::new()
        }
    };
    if misplaced.is_empty() {
        return api.delete_all(session, ids).await;
    }
    tracing::warn!(workspace = api.alias(), %session, ids = misplaced.len(),
        "trace ids named with the wrong project: failed as wrong_session, not deleted");
    let why = Refusal {
        reason: FailReason::WrongSession,
        detail: "the trace is in another project of the workspace".into(),
    };
    let rest: Vec<Uuid> = ids.iter().filter(|id| !misplaced.contains(id)).copied().collect();
    let mut rejected: HashMap<Uuid, Refusal> = misplaced.into_iter().map(|id| (id, why.clone())).collect();
    if !rest.is_empty() {
        rejected.extend(api.delete_all(session, &rest).await);
    }
    rejected
}
