//! Output events as CloudEvents 1.0 in structured JSON mode, and reading them back.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{DlqReason, Rejection};

/// The Kafka `content-type` header of structured-mode events.
pub const CE_CONTENT_TYPE: &str = "application/cloudevents+json";

#[derive(Serialize)]
struct Envelope<'a, T> {
    specversion: &'a str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    subject: &'a str,
    time: String,
    datacontenttype: &'a str,
    data: &'a T,
}

/// Serializes `data` inside a CloudEvents envelope. `id` is stable for the same logical event, so
/// consumers can de-duplicate replays after a crash.
pub fn encode<T: Serialize>(
    kind: &str,
    id: &str,
    source: &str,
    subject: &str,
    time: DateTime<Utc>,
    data: &T,
) -> Vec<u8> {
    let envelope = Envelope {
        specversion: "1.0",
        id,
        source,
        kind,
        subject,
        time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
        datacontenttype: "application/json",
        data,
    };
    // Room for a part of a few ids: `to_vec` starts at 128 bytes and grows three times for one.
    let mut out = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut out, &envelope) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

#[derive(serde::Deserialize)]
struct Incoming<T> {
    specversion: String,
    #[serde(rename = "type")]
    kind: String,
    data: T,
}

/// Reads an event the roles wrote (structured mode) back: `kind` must match and `data` must hold
/// exactly `T`'s fields.
pub fn decode<T: serde::de::DeserializeOwned>(kind: &str, payload: Option<&[u8]>) -> Result<T, Rejection> {
    let payload = payload.ok_or_else(|| Rejection {
        reason: DlqReason::MalformedJson,
        detail: "empty record".into(),
    })?;
    let ev: Incoming<T> = serde_json::from_slice(payload).map_err(|e| Rejection {
        reason: if e.is_data() {
            DlqReason::SchemaViolation
        } else {
            DlqReason::MalformedJson
        },
        // Position only: serde's message can echo a value.
        detail: format!("{kind}: {} at line {} column {}", category(&e), e.line(), e.column()),
    })?;
    if ev.specversion != "1.0" || ev.kind != kind {
        return Err(Rejection {
            reason: DlqReason::InvalidEnvelope,
            detail: format!(
                "expected a CloudEvents 1.0 {kind} event, got {} {}",
                ev.specversion, ev.kind
            ),
        });
    }
    Ok(ev.data)
}

/// What kind of fault a serde error is, in words that never quote the input.
fn category(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not JSON",
        Category::Data => "not the expected shape",
        Category::Eof => "cut short",
    }
}
