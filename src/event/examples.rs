//! The events of dataset examples erased for a request (`erasure.examples.{erased,failed}.v1`,
//! on a topic of their own, so consumers of the trace events see nothing new). New types, not new
//! fields: the v1 trace schemas are closed, and a v1 consumer validating against them must keep
//! passing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{FailReason, SourceRef};

pub const EXAMPLES_ERASED_TYPE: &str = "erasure.examples.erased.v1";
pub const EXAMPLES_FAILED_TYPE: &str = "erasure.examples.failed.v1";

/// `data` of `erasure.examples.erased.v1`: these examples were hard-deleted, and read back with no
/// inputs, outputs or metadata (LangSmith nulls them in every version; attachment files may take
/// up to 7 days to go).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamplesErased {
    pub request_id: String,
    pub workspace: String,
    pub example_ids: Vec<Uuid>,
    pub part: u32,
    pub parts: u32,
    #[serde(serialize_with = "super::time::rfc3339")]
    pub erased_at: DateTime<Utc>,
    pub source: SourceRef,
}

/// `data` of `erasure.examples.failed.v1`: these examples could not be erased (or proven erased);
/// no ids when the search for them was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamplesFailed {
    pub request_id: String,
    pub workspace: String,
    pub example_ids: Vec<Uuid>,
    pub part: u32,
    pub parts: u32,
    pub reason: FailReason,
    pub detail: String,
    #[serde(serialize_with = "super::time::rfc3339")]
    pub failed_at: DateTime<Utc>,
    pub source: SourceRef,
}
