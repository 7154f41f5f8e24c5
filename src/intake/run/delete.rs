//! One delete call of a batch, with the ids named with the wrong project taken out first (see
//! `api/owners.rs`): they fail as `wrong_session` instead of being "deleted" where they are not.

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use crate::api::{LangSmith, Refusal};
use crate::event::FailReason;
use crate::intake::Intake;

/// Deletes `ids` of `session`; returns the ids refused for good, with why.
pub(super) async fn delete(intake: &Intake, api: &LangSmith, session: Uuid, ids: &[Uuid]) -> HashMap<Uuid, Refusal> {
    let cfg = &intake.config.verifier;
    let lookback = TimeDelta::from_std(cfg.lookback).unwrap_or(TimeDelta::days(400));
    let misplaced = match api.misplaced(cfg.query_api, session, ids, Utc::now() - lookback).await {
        Ok(m) => m,
        Err(answer) => {
            let why = answer.refusal("the project check");
            tracing::error!(workspace = api.alias(), %session, ids = ids.len(), detail = %why.detail,
                "the project check before a delete was refused");
            return ids.iter().map(|id| (*id, why.clone())).collect();
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
