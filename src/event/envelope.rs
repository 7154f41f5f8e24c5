//! Output events as CloudEvents 1.0 in structured JSON mode.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

/// The Kafka `content-type` header of structured-mode events.
pub const CE_CONTENT_TYPE: &str = "application/cloudevents+json";

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
    let envelope = json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": kind,
        "subject": subject,
        "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": data,
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}
