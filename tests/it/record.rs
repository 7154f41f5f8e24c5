//! One input record as it goes on the wire, and the erasure requests tests publish.

use serde_json::{json, Value};

/// One input record, as it goes on the wire.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// An erasure request with `data`, in structured CloudEvents mode, keyed by its request id.
    pub fn event(data: &Value) -> Record {
        let id = data["request_id"].as_str().unwrap_or("x").to_owned();
        let envelope = json!({"specversion": "1.0", "id": format!("evt-{id}"), "source": "urn:test",
                              "type": "erasure.requested.v1", "time": chrono::Utc::now().to_rfc3339(), "data": data});
        Record {
            key: Some(id),
            payload: serde_json::to_vec(&envelope).unwrap(),
            headers: vec![("content-type".into(), b"application/cloudevents+json".to_vec())],
        }
    }
}
