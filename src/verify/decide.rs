//! What a check's answer means for a part (design §5). Pure: the check supplies what is left, the
//! time and the config; this says which events to publish and which ids to delete again.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::VerifierConfig;
use crate::event::{DeletionFailed, DeletionRequested, DeletionVerified, FailReason};
use crate::output::Output;
use crate::window::Window;

/// The outcome of one check.
#[derive(Debug, PartialEq)]
pub struct Decision {
    /// Terminal events (verified for the ids gone, failed for ids given up on), and at most one
    /// recheck for the ids left.
    pub outputs: Vec<Output>,
    /// Ids to delete again before the recheck.
    pub re_request: Vec<Uuid>,
}

/// Decides for `part`, of which `left` (a subset of its ids) still exist at `now`.
pub fn decide(
    part: &DeletionRequested,
    left: &[Uuid],
    now: DateTime<Utc>,
    cfg: &VerifierConfig,
    window: &Window,
) -> Decision {
    let mut outputs = Vec::new();
    let gone: Vec<Uuid> = part.trace_ids.iter().filter(|id| !left.contains(id)).copied().collect();
    if !gone.is_empty() {
        outputs.push(Output::Verified(DeletionVerified {
            request_id: part.request_id.clone(),
            workspace: part.workspace.clone(),
            session_id: Some(part.session_id),
            trace_ids: gone,
            part: part.part,
            parts: part.parts,
            accepted_at: part.accepted_at,
            checked_at: now,
            attempts: part.attempt,
            source: part.source.clone(),
        }));
    }
    if left.is_empty() {
        return Decision {
            outputs,
            re_request: Vec::new(),
        };
    }
    let next = window.verify_after(now);
    if let Some((reason, detail)) = give_up(part, next, cfg) {
        outputs.push(Output::Failed(failed(part, left.to_vec(), reason, detail, now)));
        return Decision {
            outputs,
            re_request: Vec::new(),
        };
    }
    outputs.push(Output::Recheck(DeletionRequested {
        trace_ids: left.to_vec(),
        verify_after: next,
        attempt: part.attempt + 1,
        ..part.clone()
    }));
    Decision {
        outputs,
        re_request: if cfg.re_request { left.to_vec() } else { Vec::new() },
    }
}

/// Why ids still present are given up on, if they are: the attempts are spent, or the next check
/// (at `next`) would come after the deadline.
fn give_up(part: &DeletionRequested, next: DateTime<Utc>, cfg: &VerifierConfig) -> Option<(FailReason, String)> {
    if part.attempt >= cfg.max_attempts {
        let detail = format!("still present after {} deletion windows", part.attempt);
        return Some((FailReason::StillPresent, detail));
    }
    (next > part.deadline).then(|| {
        let (next, deadline) = (next.to_rfc3339(), part.deadline.to_rfc3339());
        let detail = format!("the next check ({next}) would fall after the deadline ({deadline})");
        (FailReason::DeadlineAtRisk, detail)
    })
}

/// A `deletion-failed` event for `ids` of `part`.
pub fn failed(
    part: &DeletionRequested,
    ids: Vec<Uuid>,
    reason: FailReason,
    detail: String,
    now: DateTime<Utc>,
) -> DeletionFailed {
    DeletionFailed {
        request_id: part.request_id.clone(),
        workspace: part.workspace.clone(),
        session_id: Some(part.session_id),
        trace_ids: ids,
        part: part.part,
        parts: part.parts,
        reason,
        detail,
        failed_at: now,
        attempts: part.attempt,
        source: part.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;

    use super::*;
    use crate::event::SourceRef;

    fn part(attempt: u32, deadline_in: TimeDelta) -> DeletionRequested {
        let now = Utc::now();
        DeletionRequested {
            request_id: "r".into(),
            workspace: "main".into(),
            session_id: Uuid::from_u128(9),
            trace_ids: (1..=3).map(Uuid::from_u128).collect(),
            part: 0,
            parts: 1,
            accepted_at: now,
            verify_after: now,
            deadline: now + deadline_in,
            attempt,
            source: SourceRef {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                event_id: "e".into(),
                event_source: "s".into(),
            },
            audit_log_ids: Vec::new(),
        }
    }

    fn window() -> Window {
        Window::Fixed {
            delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn none_left_is_verified() {
        let p = part(1, TimeDelta::days(30));
        let d = decide(&p, &[], Utc::now(), &VerifierConfig::default(), &window());
        assert!(d.re_request.is_empty());
        assert!(matches!(&d.outputs[..], [Output::Verified(v)] if v.trace_ids == p.trace_ids && v.attempts == 1));
    }

    #[test]
    fn some_left_verifies_the_rest_and_rechecks_exactly_those() {
        let p = part(1, TimeDelta::days(30));
        let left = [Uuid::from_u128(2)];
        let now = Utc::now();
        let d = decide(&p, &left, now, &VerifierConfig::default(), &window());
        assert_eq!(d.re_request, left);
        let [Output::Verified(v), Output::Recheck(r)] = &d.outputs[..] else {
            panic!("{:?}", d.outputs)
        };
        assert_eq!(v.trace_ids, vec![Uuid::from_u128(1), Uuid::from_u128(3)]);
        assert_eq!((r.trace_ids.as_slice(), r.attempt), (&left[..], 2));
        assert_eq!(r.verify_after, now + TimeDelta::seconds(60));
        let off = VerifierConfig {
            re_request: false,
            ..Default::default()
        };
        assert!(decide(&p, &left, now, &off, &window()).re_request.is_empty());
    }

    #[test]
    fn attempts_exhausted_or_deadline_near_fail_with_the_ids_left() {
        let all: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        let d = decide(
            &part(3, TimeDelta::days(30)),
            &all,
            Utc::now(),
            &VerifierConfig::default(),
            &window(),
        );
        assert!(
            matches!(&d.outputs[..], [Output::Failed(f)] if f.reason == FailReason::StillPresent && f.trace_ids == all)
        );
        let d = decide(
            &part(1, TimeDelta::seconds(10)),
            &all[..1],
            Utc::now(),
            &VerifierConfig::default(),
            &window(),
        );
        assert!(
            matches!(&d.outputs[..], [Output::Verified(_), Output::Failed(f)] if f.reason == FailReason::DeadlineAtRisk && f.trace_ids == all[..1])
        );
        assert!(d.re_request.is_empty());
    }
}
