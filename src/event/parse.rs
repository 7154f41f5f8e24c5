//! Turns a Kafka record into a validated [`Request`], or a [`Rejection`] for the DLQ.
//! Details name the field and position, never the offending value (it may be personal data).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::dlq::{reject, DlqReason, Rejection};
use super::incoming::Incoming;
use super::{ErasureRequested, Request, SourceRef, Target, TargetSpec, REQUESTED_TYPE};

const MAX_TARGETS: usize = 100;
const MAX_TEXT: usize = 256;
/// CloudEvents `id` and `source` are copied into every output event: bounded, so outputs stay small.
const MAX_ATTRIBUTE: usize = 512;
const DEFAULT_DEADLINE_DAYS: i64 = 30;

/// What the worker accepts, from its config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_ids_per_request: usize,
    pub workspaces: Vec<String>,
    pub default_workspace: Option<String>,
}

#[derive(Deserialize)]
struct Structured<'a> {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    time: Option<String>,
    datacontenttype: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    data_base64: Option<serde::de::IgnoredAny>,
}

struct Envelope<'a> {
    id: String,
    source: String,
    time: Option<DateTime<Utc>>,
    data: &'a str,
}

pub fn parse_request(rec: &Incoming<'_>, limits: &Limits, now: DateTime<Utc>) -> Result<Request, Rejection> {
    let Some(payload) = rec.payload.filter(|p| !p.is_empty()) else {
        return reject(DlqReason::MalformedJson, "the record has no payload");
    };
    if payload.len() > limits.max_event_bytes {
        return reject(
            DlqReason::TooLarge,
            format!("{} bytes, more than {}", payload.len(), limits.max_event_bytes),
        );
    }
    let env = envelope(rec, payload)?;
    if env.id.len() > MAX_ATTRIBUTE || env.source.len() > MAX_ATTRIBUTE {
        return reject(
            DlqReason::InvalidEnvelope,
            format!("id and source must be at most {MAX_ATTRIBUTE} bytes"),
        );
    }
    let data: ErasureRequested = serde_json::from_str(env.data).or_else(|e| {
        reject(
            DlqReason::SchemaViolation,
            format!(
                "data is not a valid {REQUESTED_TYPE} at line {} column {}",
                e.line(),
                e.column()
            ),
        )
    })?;
    validate(data, env, rec, limits, now)
}

fn envelope<'a>(rec: &Incoming<'_>, payload: &'a [u8]) -> Result<Envelope<'a>, Rejection> {
    let text =
        std::str::from_utf8(payload).or_else(|_| reject(DlqReason::MalformedJson, "the payload is not UTF-8"))?;
    match rec.header("ce_specversion")? {
        Some(version) => binary(rec, version, text),
        None => structured(rec, text),
    }
}

/// Binary mode: attributes in ce_* headers, the payload is the data.
fn binary<'a>(rec: &Incoming<'_>, version: &str, text: &'a str) -> Result<Envelope<'a>, Rejection> {
    let content_type = rec.header("content-type")?;
    if content_type.is_some_and(|c| !c.starts_with("application/json")) {
        return reject(
            DlqReason::InvalidEnvelope,
            "binary mode needs content-type application/json",
        );
    }
    let attr = |name: &str| -> Result<String, Rejection> {
        match rec.header(name)? {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => reject(DlqReason::InvalidEnvelope, format!("header {name} is missing")),
        }
    };
    check_version_and_type(version, &attr("ce_type")?)?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).or_else(|e| {
        reject(
            DlqReason::MalformedJson,
            format!("line {} column {}", e.line(), e.column()),
        )
    })?;
    let time = rec.header("ce_time")?.map(|t| time("ce_time", t)).transpose()?;
    Ok(Envelope {
        id: attr("ce_id")?,
        source: attr("ce_source")?,
        time,
        data: text,
    })
}

/// Structured mode: the payload is the whole CloudEvent.
fn structured<'a>(rec: &Incoming<'_>, text: &'a str) -> Result<Envelope<'a>, Rejection> {
    let content_type = rec.header("content-type")?;
    if content_type.is_some_and(|c| !c.starts_with("application/cloudevents+json")) {
        return reject(
            DlqReason::InvalidEnvelope,
            "structured mode needs content-type application/cloudevents+json",
        );
    }
    let ce: Structured = serde_json::from_str(text).or_else(|e| match e.classify() {
        serde_json::error::Category::Data => reject(
            DlqReason::InvalidEnvelope,
            format!("not a CloudEvents envelope (line {} column {})", e.line(), e.column()),
        ),
        _ => reject(
            DlqReason::MalformedJson,
            format!("line {} column {}", e.line(), e.column()),
        ),
    })?;
    check_version_and_type(&ce.specversion, &ce.kind)?;
    if ce.id.is_empty() || ce.source.is_empty() {
        return reject(DlqReason::InvalidEnvelope, "id and source must not be empty");
    }
    if ce.data_base64.is_some() {
        return reject(
            DlqReason::InvalidEnvelope,
            "data_base64 is not accepted; send JSON data",
        );
    }
    if ce
        .datacontenttype
        .as_deref()
        .is_some_and(|c| !c.starts_with("application/json"))
    {
        return reject(DlqReason::InvalidEnvelope, "datacontenttype must be application/json");
    }
    let data = ce.data.ok_or_else(|| Rejection {
        reason: DlqReason::InvalidEnvelope,
        detail: "data is missing".into(),
    })?;
    let time = ce.time.as_deref().map(|t| time("time", t)).transpose()?;
    Ok(Envelope {
        id: ce.id,
        source: ce.source,
        time,
        data: data.get(),
    })
}

fn check_version_and_type(version: &str, kind: &str) -> Result<(), Rejection> {
    if version != "1.0" {
        return reject(DlqReason::InvalidEnvelope, "specversion must be 1.0");
    }
    if kind != REQUESTED_TYPE {
        return reject(DlqReason::InvalidEnvelope, format!("type must be {REQUESTED_TYPE}"));
    }
    Ok(())
}

fn time(field: &str, s: &str) -> Result<DateTime<Utc>, Rejection> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| reject(DlqReason::InvalidTime, format!("{field} is not an RFC 3339 timestamp")))
}

/// A UUID in its canonical hyphenated form only (what the schema's pattern allows).
pub fn canonical_uuid(s: &str) -> Option<Uuid> {
    (s.len() == 36).then(|| Uuid::try_parse(s).ok()).flatten()
}

fn is_id(s: &str, max: usize, extra: &[char]) -> bool {
    let mut chars = s.chars();
    (1..=max).contains(&s.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

fn is_text(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control)
}

fn validate(
    data: ErasureRequested,
    env: Envelope<'_>,
    rec: &Incoming<'_>,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Request, Rejection> {
    if !is_id(&data.request_id, 128, &['.', '_', ':', '-']) {
        return reject(
            DlqReason::InvalidId,
            "request_id must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        );
    }
    let workspace = workspace(data.workspace, limits)?;
    let deadline = match data.deadline {
        Some(d) => time("deadline", &d)?,
        None => env.time.unwrap_or(now) + TimeDelta::days(DEFAULT_DEADLINE_DAYS),
    };
    let targets = targets(data.targets, limits)?;
    let source = SourceRef {
        topic: rec.topic.to_owned(),
        partition: rec.partition,
        offset: rec.offset,
        event_id: env.id,
        event_source: env.source,
    };
    Ok(Request {
        request_id: data.request_id,
        workspace,
        deadline,
        targets,
        source,
    })
}

/// The workspace alias named, or the default; it must be configured.
fn workspace(named: Option<String>, limits: &Limits) -> Result<String, Rejection> {
    Ok(match named {
        Some(w) if !is_id(&w, 64, &['_', '-']) => {
            return reject(DlqReason::InvalidId, "workspace is not a valid alias")
        }
        Some(w) if limits.workspaces.contains(&w) => w,
        Some(_) => return reject(DlqReason::UnknownWorkspace, "workspace names no configured workspace"),
        None => match &limits.default_workspace {
            Some(d) => d.clone(),
            None => {
                return reject(
                    DlqReason::UnknownWorkspace,
                    "no workspace given and no default configured",
                )
            }
        },
    })
}

/// The targets, each valid, with at most `max_ids_per_request` trace ids in all.
fn targets(specs: Vec<TargetSpec>, limits: &Limits) -> Result<Vec<Target>, Rejection> {
    if specs.is_empty() {
        return reject(DlqReason::EmptyRequest, "targets is empty");
    }
    if specs.len() > MAX_TARGETS {
        return reject(DlqReason::TooManyIds, format!("more than {MAX_TARGETS} targets"));
    }
    let mut total = 0usize;
    let mut targets = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let target = target(i, spec)?;
        if let Target::Explicit { trace_ids, .. } = &target {
            total += trace_ids.len();
            if total > limits.max_ids_per_request {
                return reject(
                    DlqReason::TooManyIds,
                    format!("more than {} trace ids", limits.max_ids_per_request),
                );
            }
        }
        targets.push(target);
    }
    Ok(targets)
}

mod target;
use target::target;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
