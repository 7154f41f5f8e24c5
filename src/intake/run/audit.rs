//! The audit records of a batch's delete calls (workspaces with `organization_id`, see
//! `api/audit.rs`): looked up once the calls are answered, and again every second while some are
//! missing, for at most `intake.audit_wait`. Whatever is not found by then is counted and logged;
//! the batch's events go without it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::Intake;
use crate::api::{LangSmith, Refusal};

/// Searched either side of the calls' time: LangSmith stamps records with its own clock.
const MARGIN: TimeDelta = TimeDelta::seconds(5);
/// Between lookups of records not found yet.
const AGAIN: Duration = Duration::from_secs(1);

/// Audit record per accepted id of `ids` (not in `rejected`), for delete calls made since `from`.
pub(super) async fn records(
    intake: &Intake,
    api: &LangSmith,
    ids: &[Uuid],
    rejected: &HashMap<Uuid, Refusal>,
    from: DateTime<Utc>,
) -> HashMap<Uuid, Uuid> {
    let mut wanted: HashSet<Uuid> = ids.iter().filter(|id| !rejected.contains_key(id)).copied().collect();
    let mut found = HashMap::new();
    if !api.audited() || wanted.is_empty() {
        return found;
    }
    let look = async {
        loop {
            match api.audit_records(from - MARGIN, Utc::now() + MARGIN, &wanted).await {
                Ok(records) => {
                    for id in records.keys() {
                        wanted.remove(id);
                    }
                    found.extend(records);
                }
                Err(refused) => {
                    tracing::warn!(
                        workspace = api.alias(),
                        status = refused.status.as_u16(),
                        "LangSmith refused the audit-log lookup: the batch's events go without audit records"
                    );
                    return;
                }
            }
            if wanted.is_empty() {
                return;
            }
            tokio::time::sleep(AGAIN).await;
        }
    };
    let _ = tokio::time::timeout(intake.config.intake.audit_wait, look).await;
    let count = |outcome: &str, n: usize| {
        let labels = [api.alias(), outcome];
        intake.metrics.audit_records.with_label_values(&labels).inc_by(n as u64);
    };
    count("found", found.len());
    if !wanted.is_empty() {
        count("missing", wanted.len());
        tracing::warn!(
            workspace = api.alias(),
            missing = wanted.len(),
            found = found.len(),
            "audit records of accepted delete calls not found in time"
        );
    }
    found
}
