//! Telemetry occurrences: one type per thing worth telling an operator, which both logs it and
//! counts it, so that the log line and the metric cannot drift apart (as Vector's internal events
//! do). Fields name workspaces, projects, requests and positions, never personal data.

use rdkafka::message::{Message, OwnedMessage};

use crate::event::{DeletionFailed, DeletionRequested, DlqReason, FailReason, Rejection};
use crate::metrics::Metrics;

/// Something that happened, told to the log and to the metrics at once.
pub trait Occurrence {
    fn emit(self, m: Option<&Metrics>);
}

/// An input record went to the DLQ.
pub struct DeadLettered<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: DlqReason,
    pub detail: &'a str,
}

impl<'a> DeadLettered<'a> {
    pub fn of(m: &'a OwnedMessage, why: &'a Rejection) -> DeadLettered<'a> {
        DeadLettered {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            reason: why.reason,
            detail: &why.detail,
        }
    }
}

impl Occurrence for DeadLettered<'_> {
    fn emit(self, m: Option<&Metrics>) {
        let reason = self.reason.as_str();
        tracing::warn!(topic = self.topic, partition = self.partition, offset = self.offset, reason,
            detail = %self.detail, "record sent to the DLQ");
        if let Some(m) = m {
            m.dlq.with_label_values(&[reason]).inc();
        }
    }
}

/// Ids of a request ended in `deletion-failed`.
pub struct Failed<'a> {
    pub request_id: &'a str,
    pub workspace: &'a str,
    pub reason: FailReason,
    pub ids: usize,
}

impl<'a> Failed<'a> {
    /// The event's ids.
    pub fn of(f: &'a DeletionFailed) -> Failed<'a> {
        Failed {
            request_id: &f.request_id,
            workspace: &f.workspace,
            reason: f.reason,
            ids: f.trace_ids.len(),
        }
    }

    /// Every id of `part`, for `reason`.
    pub fn part(part: &'a DeletionRequested, reason: FailReason) -> Failed<'a> {
        Failed {
            request_id: &part.request_id,
            workspace: &part.workspace,
            reason,
            ids: part.trace_ids.len(),
        }
    }
}

impl Occurrence for Failed<'_> {
    fn emit(self, m: Option<&Metrics>) {
        tracing::info!(request_id = %self.request_id, workspace = %self.workspace, reason = self.reason.as_str(),
            ids = self.ids, "deletion failed");
        if let Some(m) = m {
            m.failed.with_label_values(&[self.reason.as_str()]).inc();
        }
    }
}

/// The workspace id (`X-Tenant-Id`) was learnt from a project.
pub struct TenantLearnt<'a> {
    pub workspace: &'a str,
    pub tenant: &'a str,
}

impl Occurrence for TenantLearnt<'_> {
    fn emit(self, m: Option<&Metrics>) {
        tracing::info!(workspace = %self.workspace, tenant = %self.tenant, "learnt the workspace id from LangSmith");
        if let Some(m) = m {
            m.tenant_learnt.inc();
        }
    }
}

/// LangSmith answers v2 calls under this prefix (`/api/v2` or `/v2`).
pub struct V2PrefixSettled<'a> {
    pub workspace: &'a str,
    pub prefix: &'a str,
}

impl Occurrence for V2PrefixSettled<'_> {
    fn emit(self, m: Option<&Metrics>) {
        tracing::info!(workspace = %self.workspace, prefix = self.prefix, "LangSmith answers v2 calls under this prefix");
        if let Some(m) = m {
            m.v2_prefix.with_label_values(&[self.workspace, self.prefix]).set(1);
        }
    }
}

/// An answer from an endpoint LangSmith marks deprecated: counted every time, logged the first.
pub struct DeprecatedAnswer<'a> {
    pub workspace: &'a str,
    pub class: &'a str,
    pub path: &'a str,
    pub deprecation: Option<&'a str>,
    pub sunset: Option<&'a str>,
    pub first: bool,
}

impl Occurrence for DeprecatedAnswer<'_> {
    fn emit(self, m: Option<&Metrics>) {
        if self.first {
            tracing::warn!(workspace = %self.workspace, endpoint = self.path, deprecation = self.deprecation,
                sunset = self.sunset, "LangSmith says this endpoint is deprecated: plan the move before its sunset");
        }
        if let Some(m) = m {
            m.deprecated_answers.with_label_values(&[self.class]).inc();
        }
    }
}
