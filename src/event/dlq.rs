//! Why an event went to the DLQ: a stable reason code (the `dlq_reason` header and the metric's
//! label) and a detail for people that names fields and positions, never values.

/// The DLQ reason codes, as documented in `schemas/README.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqReason {
    MalformedJson,
    InvalidEnvelope,
    SchemaViolation,
    InvalidId,
    EmptyRequest,
    TooManyIds,
    UnsafeMetadata,
    UnknownWorkspace,
    InvalidTime,
    TooLarge,
}

impl DlqReason {
    pub const ALL: [DlqReason; 10] = [
        DlqReason::MalformedJson,
        DlqReason::InvalidEnvelope,
        DlqReason::SchemaViolation,
        DlqReason::InvalidId,
        DlqReason::EmptyRequest,
        DlqReason::TooManyIds,
        DlqReason::UnsafeMetadata,
        DlqReason::UnknownWorkspace,
        DlqReason::InvalidTime,
        DlqReason::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DlqReason::MalformedJson => "malformed_json",
            DlqReason::InvalidEnvelope => "invalid_envelope",
            DlqReason::SchemaViolation => "schema_violation",
            DlqReason::InvalidId => "invalid_id",
            DlqReason::EmptyRequest => "empty_request",
            DlqReason::TooManyIds => "too_many_ids",
            DlqReason::UnsafeMetadata => "unsafe_metadata",
            DlqReason::UnknownWorkspace => "unknown_workspace",
            DlqReason::InvalidTime => "invalid_time",
            DlqReason::TooLarge => "too_large",
        }
    }
}

/// Why an event went to the DLQ: its reason and a detail without personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: DlqReason,
    pub detail: String,
}

pub(super) fn reject<T>(reason: DlqReason, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason,
        detail: detail.into(),
    })
}
