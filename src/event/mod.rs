//! The event contract (`schemas/`, design §6): the input `erasure.requested.v1` and the outputs
//! `erasure.deletion.{requested,verified,failed}.v1` and `erasure.examples.{erased,failed}.v1`, all
//! as CloudEvents 1.0 in structured JSON mode.
//! Output events carry ids, never personal data: metadata values are not echoed.

mod dlq;
mod envelope;
mod examples;
mod incoming;
mod parse;
mod time;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use dlq::{DlqReason, Rejection};
pub use envelope::{decode, encode, CE_CONTENT_TYPE};
pub use examples::{ExamplesErased, ExamplesFailed, EXAMPLES_ERASED_TYPE, EXAMPLES_FAILED_TYPE};
pub use incoming::Incoming;
pub use parse::{parse_request, Limits};

pub const REQUESTED_TYPE: &str = "erasure.requested.v1";
pub const DELETION_REQUESTED_TYPE: &str = "erasure.deletion.requested.v1";
pub const DELETION_VERIFIED_TYPE: &str = "erasure.deletion.verified.v1";
pub const DELETION_FAILED_TYPE: &str = "erasure.deletion.failed.v1";

/// `data` of `erasure.requested.v1`, as upstream sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequested {
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    pub targets: Vec<TargetSpec>,
}

/// One target as sent: explicit (`session_id` or `session_name`, plus `trace_ids`), a metadata
/// selector (`metadata`, optional session scope, time range and `root_only`), or dataset examples
/// by id (`example_ids` alone). Validation turns it into a [`Target`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example_ids: Option<Vec<String>>,
}

/// Where a project is named: by id, or by name to resolve through `GET /sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionRef {
    Id(Uuid),
    Name(String),
}

/// A validated target.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Explicit {
        session: SessionRef,
        trace_ids: Vec<Uuid>,
    },
    /// Traces with a run whose metadata holds *all* the pairs (their root run, with `root_only`),
    /// optionally in one session and time range.
    Selector {
        session: Option<SessionRef>,
        metadata: BTreeMap<String, String>,
        start_time: Option<DateTime<Utc>>,
        end_time: Option<DateTime<Utc>>,
        root_only: bool,
    },
    /// Dataset examples named by id (at most 1000 per target), hard-deleted whatever the
    /// workspace's `erase_examples`.
    Examples {
        example_ids: Vec<Uuid>,
    },
}

impl Target {
    /// The trace ids the target names before resolution (a selector's are not known yet).
    pub fn ids(&self) -> usize {
        match self {
            Target::Explicit { trace_ids, .. } => trace_ids.len(),
            Target::Selector { .. } | Target::Examples { .. } => 0,
        }
    }
}

/// A validated erasure request and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub request_id: String,
    pub workspace: String,
    pub deadline: DateTime<Utc>,
    pub targets: Vec<Target>,
    pub source: SourceRef,
}

/// The input event behind an output event, so auditors can trace it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event_id: String,
    pub event_source: String,
}

/// `data` of `erasure.deletion.requested.v1`: LangSmith accepted the delete of one part. Read
/// back from internal topics, it tolerates fields it does not know: a rolling upgrade that adds one
/// must not dead-letter weeks of pending checks (the schema stays closed for what is published).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionRequested {
    pub request_id: String,
    pub workspace: String,
    pub session_id: Uuid,
    pub trace_ids: Vec<Uuid>,
    pub part: u32,
    pub parts: u32,
    #[serde(serialize_with = "time::rfc3339")]
    pub accepted_at: DateTime<Utc>,
    #[serde(serialize_with = "time::rfc3339")]
    pub verify_after: DateTime<Utc>,
    #[serde(serialize_with = "time::rfc3339")]
    pub deadline: DateTime<Utc>,
    pub attempt: u32,
    pub source: SourceRef,
    /// Ids of LangSmith's audit records (`delete_runs`) of the intake's delete calls that named
    /// these traces: workspaces with `organization_id`, when the records were found in time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_log_ids: Vec<Uuid>,
}

/// `data` of `erasure.deletion.verified.v1`: none of the part's traces exist any more, or a
/// selector matched none at all (empty `trace_ids`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionVerified {
    pub request_id: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    pub trace_ids: Vec<Uuid>,
    pub part: u32,
    pub parts: u32,
    #[serde(serialize_with = "time::rfc3339")]
    pub accepted_at: DateTime<Utc>,
    #[serde(serialize_with = "time::rfc3339")]
    pub checked_at: DateTime<Utc>,
    pub attempts: u32,
    pub source: SourceRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The project named by id or name does not exist in the workspace.
    UnknownSession,
    /// LangSmith rejected these ids permanently (a 4xx other than auth and rate limits).
    RejectedByApi,
    /// Still present after the configured number of deletion windows.
    StillPresent,
    /// The next check would fall after the request's deadline.
    DeadlineAtRisk,
    /// The query API refused the check permanently (a 4xx other than auth and rate limits).
    CheckRejected,
    /// LangSmith kept answering 403 for this project's delete or check: the key's role lacks
    /// `runs:delete`, or attribute-based access control denies the project.
    Forbidden,
    /// The verifier that read the part has no such workspace configured (config drift).
    UnknownWorkspace,
    /// The trace is in another project of the workspace than the request named: not deleted
    /// (LangSmith would accept the delete and leave it).
    WrongSession,
}

impl FailReason {
    /// The name in events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::UnknownSession => "unknown_session",
            FailReason::RejectedByApi => "rejected_by_api",
            FailReason::StillPresent => "still_present",
            FailReason::DeadlineAtRisk => "deadline_at_risk",
            FailReason::CheckRejected => "check_rejected",
            FailReason::Forbidden => "forbidden",
            FailReason::UnknownWorkspace => "unknown_workspace",
            FailReason::WrongSession => "wrong_session",
        }
    }
}

/// `data` of `erasure.deletion.failed.v1`: these ids could not be erased (or proven erased).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionFailed {
    pub request_id: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    pub trace_ids: Vec<Uuid>,
    pub part: u32,
    pub parts: u32,
    pub reason: FailReason,
    pub detail: String,
    #[serde(serialize_with = "time::rfc3339")]
    pub failed_at: DateTime<Utc>,
    pub attempts: u32,
    pub source: SourceRef,
}

#[cfg(test)]
mod tests {
    use super::FailReason;

    #[test]
    fn fail_reason_names_match_the_serialized_form() {
        for r in [
            FailReason::UnknownSession,
            FailReason::RejectedByApi,
            FailReason::StillPresent,
            FailReason::DeadlineAtRisk,
            FailReason::CheckRejected,
            FailReason::Forbidden,
            FailReason::UnknownWorkspace,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
