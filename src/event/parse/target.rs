//! One target of a request: trace ids of a project, a metadata selector, or dataset examples by id,
//! validated (the selector's pairs go into LangSmith filter expressions).

use std::collections::BTreeMap;

use super::{canonical_uuid, is_text, time};
use crate::event::dlq::{reject, DlqReason, Rejection};
use crate::event::{SessionRef, Target, TargetSpec};

/// Metadata pairs per selector.
const MAX_PAIRS: usize = 10;
/// Example ids per target (one hard delete).
const MAX_EXAMPLE_IDS: usize = 1000;

fn session(i: usize, spec: &TargetSpec) -> Result<Option<SessionRef>, Rejection> {
    match (&spec.session_id, &spec.session_name) {
        (Some(_), Some(_)) => reject(
            DlqReason::SchemaViolation,
            format!("targets[{i}] has both session_id and session_name"),
        ),
        (Some(id), None) => match canonical_uuid(id) {
            Some(u) => Ok(Some(SessionRef::Id(u))),
            None => reject(DlqReason::InvalidId, format!("targets[{i}].session_id is not a UUID")),
        },
        (None, Some(name)) if is_text(name) => Ok(Some(SessionRef::Name(name.clone()))),
        (None, Some(_)) => reject(
            DlqReason::SchemaViolation,
            format!("targets[{i}].session_name must be 1-256 printable characters"),
        ),
        (None, None) => Ok(None),
    }
}

pub(super) fn target(i: usize, mut spec: TargetSpec) -> Result<Target, Rejection> {
    if let Some(ids) = spec.example_ids.take() {
        return examples(i, ids, &spec);
    }
    let session = session(i, &spec)?;
    match (spec.trace_ids.take(), spec.metadata.take()) {
        (Some(_), Some(_)) => reject(
            DlqReason::SchemaViolation,
            format!("targets[{i}] has both trace_ids and metadata"),
        ),
        (Some(ids), None) => explicit(i, session, ids, &spec),
        (None, Some(metadata)) => selector(i, session, metadata, &spec),
        (None, None) => reject(
            DlqReason::EmptyRequest,
            format!("targets[{i}] has neither trace_ids nor metadata"),
        ),
    }
}

/// Dataset examples by id, alone in their target: canonical UUIDs, sorted and without repeats.
fn examples(i: usize, ids: Vec<String>, spec: &TargetSpec) -> Result<Target, Rejection> {
    let alone = TargetSpec::default();
    if spec != &alone {
        return reject(
            DlqReason::SchemaViolation,
            format!("targets[{i}]: example_ids goes alone in its target"),
        );
    }
    if ids.is_empty() {
        return reject(DlqReason::EmptyRequest, format!("targets[{i}].example_ids is empty"));
    }
    if ids.len() > MAX_EXAMPLE_IDS {
        return reject(
            DlqReason::TooManyIds,
            format!("targets[{i}].example_ids has more than {MAX_EXAMPLE_IDS} ids"),
        );
    }
    let mut example_ids = uuids(i, "example_ids", &ids)?;
    example_ids.sort_unstable();
    example_ids.dedup();
    Ok(Target::Examples { example_ids })
}

/// `ids` as canonical UUIDs; the first that is not one is named by position.
fn uuids(i: usize, field: &str, ids: &[String]) -> Result<Vec<uuid::Uuid>, Rejection> {
    let parse = |(j, id): (usize, &String)| {
        canonical_uuid(id).ok_or_else(|| Rejection {
            reason: DlqReason::InvalidId,
            detail: format!("targets[{i}].{field}[{j}] is not a UUID"),
        })
    };
    ids.iter().enumerate().map(parse).collect()
}

/// Trace ids of one project, canonical UUIDs, sorted and without repeats.
fn explicit(i: usize, session: Option<SessionRef>, ids: Vec<String>, spec: &TargetSpec) -> Result<Target, Rejection> {
    let Some(session) = session else {
        return reject(
            DlqReason::SchemaViolation,
            format!("targets[{i}] needs session_id or session_name"),
        );
    };
    if spec.start_time.is_some() || spec.end_time.is_some() || spec.root_only.is_some() {
        return reject(
            DlqReason::SchemaViolation,
            format!("targets[{i}]: a time range and root_only go with metadata only"),
        );
    }
    if ids.is_empty() {
        return reject(DlqReason::EmptyRequest, format!("targets[{i}].trace_ids is empty"));
    }
    let mut trace_ids = uuids(i, "trace_ids", &ids)?;
    trace_ids.sort_unstable();
    trace_ids.dedup();
    Ok(Target::Explicit { session, trace_ids })
}

/// Metadata pairs, in an optional project and time range.
fn selector(
    i: usize,
    session: Option<SessionRef>,
    metadata: BTreeMap<String, String>,
    spec: &TargetSpec,
) -> Result<Target, Rejection> {
    selector_pairs(i, &metadata)?;
    let start_time = (spec.start_time)
        .as_deref()
        .map(|t| time(&format!("targets[{i}].start_time"), t))
        .transpose()?;
    let end_time = (spec.end_time)
        .as_deref()
        .map(|t| time(&format!("targets[{i}].end_time"), t))
        .transpose()?;
    if let (Some(s), Some(e)) = (start_time, end_time) {
        if s > e {
            return reject(
                DlqReason::InvalidTime,
                format!("targets[{i}].start_time is after end_time"),
            );
        }
    }
    Ok(Target::Selector {
        session,
        metadata,
        start_time,
        end_time,
        root_only: spec.root_only.unwrap_or(false),
    })
}

/// Metadata pairs go into LangSmith filter expressions: keys are restricted to a safe alphabet and
/// values to printable text (and are escaped when the filter is built).
fn selector_pairs(i: usize, metadata: &BTreeMap<String, String>) -> Result<(), Rejection> {
    if metadata.is_empty() {
        return reject(DlqReason::EmptyRequest, format!("targets[{i}].metadata is empty"));
    }
    if metadata.len() > MAX_PAIRS {
        return reject(
            DlqReason::UnsafeMetadata,
            format!("targets[{i}].metadata has more than {MAX_PAIRS} pairs"),
        );
    }
    for (n, (k, v)) in metadata.iter().enumerate() {
        if !(1..=64).contains(&k.len()) || !k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return reject(
                DlqReason::UnsafeMetadata,
                format!("targets[{i}].metadata key #{n} must be 1-64 of A-Z a-z 0-9 _ . -"),
            );
        }
        if !is_text(v) {
            return reject(
                DlqReason::UnsafeMetadata,
                format!("targets[{i}].metadata value #{n} must be 1-256 printable characters"),
            );
        }
    }
    Ok(())
}
