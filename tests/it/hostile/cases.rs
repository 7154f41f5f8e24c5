//! The hostile records: malformed and adversarial input, each with what must become of it.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::world::Record;

/// What must become of a hostile record.
pub enum Want {
    /// Dead-lettered with this reason, its bytes untouched.
    Dead(&'static str),
    /// Processed: these ids reach `deletion-requested` in this project.
    Requested(Uuid, BTreeSet<Uuid>),
    /// A selector that matches nothing: one `deletion-verified` naming no trace.
    NothingFound,
}

pub struct Case {
    pub what: &'static str,
    pub record: Record,
    pub want: Want,
}

fn envelope(data: Value) -> Value {
    json!({"specversion": "1.0", "id": "evt", "source": "urn:hostile", "type": "erasure.requested.v1", "data": data})
}

fn record(payload: Vec<u8>, headers: &[(&str, &[u8])]) -> Record {
    Record {
        key: None,
        payload,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
    }
}

const CE: (&str, &[u8]) = ("content-type", b"application/cloudevents+json");

fn structured(v: &Value) -> Record {
    record(serde_json::to_vec(v).unwrap(), &[CE])
}

pub fn explicit(id: &str, session: Uuid, n: usize) -> (Value, BTreeSet<Uuid>) {
    let ids: BTreeSet<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    (
        json!({"request_id": id, "targets": [{"session_id": session, "trace_ids": ids}]}),
        ids,
    )
}

/// Injection attempts against LangSmith's filter language, and text that breaks naive quoting.
pub const INJECTIONS: [&str; 8] = [
    "\") or eq(name, \"chat",
    "x\"), has(tags, \"a",
    "\\\") or true or (\"",
    "'; drop table runs; --",
    "and(eq(is_root, true))",
    "${jndi:ldap://x/a}",
    "\u{2028}\u{2029}\u{feff}",
    "😀\\u0022)",
];

pub fn cases(session: Uuid) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |what, record, want| cases.push(Case { what, record, want });
    let (valid, _) = explicit("x", session, 2);
    let bytes = serde_json::to_vec(&envelope(valid.clone())).unwrap();
    for cut in [1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        add(
            "truncated JSON",
            record(bytes[..cut].to_vec(), &[CE]),
            Want::Dead("malformed_json"),
        );
    }
    let mut bad_utf8 = bytes.clone();
    let at = bad_utf8.windows(3).position(|w| w == b"evt").unwrap();
    bad_utf8[at] = 0xff;
    add("invalid UTF-8", record(bad_utf8, &[CE]), Want::Dead("malformed_json"));
    add(
        "binary garbage",
        record((0..=255u8).rev().collect(), &[]),
        Want::Dead("malformed_json"),
    );
    add(
        "NUL bytes outside strings",
        record(b"{\0\0}".to_vec(), &[CE]),
        Want::Dead("malformed_json"),
    );
    add("empty payload", record(Vec::new(), &[CE]), Want::Dead("malformed_json"));
    add(
        "a JSON array",
        record(b"[1, 2, 3]".to_vec(), &[CE]),
        Want::Dead("invalid_envelope"),
    );
    add(
        "a JSON string",
        record(b"\"erasure\"".to_vec(), &[CE]),
        Want::Dead("invalid_envelope"),
    );

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let nested = format!(
        r#"{{"specversion": "1.0", "id": "e", "source": "s", "type": "erasure.requested.v1", "data": {deep}}}"#
    );
    add(
        "100,000 levels of nesting in data",
        record(nested.into_bytes(), &[CE]),
        Want::Dead("schema_violation"),
    );
    let nested = format!(r#"{{"x": {deep}, "specversion": "1.0"}}"#);
    add(
        "100,000 levels of nesting in the envelope",
        record(nested.into_bytes(), &[CE]),
        Want::Dead("invalid_envelope"),
    );

    let dup =
        br#"{"specversion": "1.0", "id": "a", "id": "b", "source": "s", "type": "erasure.requested.v1", "data": {}}"#;
    add(
        "duplicate envelope keys",
        record(dup.to_vec(), &[CE]),
        Want::Dead("invalid_envelope"),
    );
    let dup = format!(
        r#"{{"specversion": "1.0", "id": "a", "source": "s", "type": "erasure.requested.v1", "data": {{"request_id": "a", "request_id": "b", "targets": [{{"session_id": "{session}", "trace_ids": ["{}"]}}]}}}}"#,
        Uuid::new_v4()
    );
    add(
        "duplicate data keys",
        record(dup.into_bytes(), &[CE]),
        Want::Dead("schema_violation"),
    );
    add(
        "a number for request_id",
        structured(&envelope(
            json!({"request_id": 12345, "targets": [{"session_id": session, "trace_ids": [Uuid::new_v4()]}]}),
        )),
        Want::Dead("schema_violation"),
    );
    add(
        "numbers for trace ids",
        structured(&envelope(
            json!({"request_id": "n", "targets": [{"session_id": session, "trace_ids": [1, 2]}]}),
        )),
        Want::Dead("schema_violation"),
    );
    let mut v = envelope(valid.clone());
    v["specversion"] = json!(1.0);
    add(
        "a number for specversion",
        structured(&v),
        Want::Dead("invalid_envelope"),
    );
    add(
        "an overflowing number",
        record(br#"{"specversion": "1.0", "id": 1e999}"#.to_vec(), &[CE]),
        Want::Dead("malformed_json"),
    );
    for version in ["0.3", "1.1", "2.0", ""] {
        let mut v = envelope(valid.clone());
        v["specversion"] = json!(version);
        add(
            "unknown CloudEvents version",
            structured(&v),
            Want::Dead("invalid_envelope"),
        );
    }
    let mut v = envelope(valid.clone());
    v["type"] = json!("erasure.requested.v2");
    add("unknown event type", structured(&v), Want::Dead("invalid_envelope"));
    let mut v = envelope(valid.clone());
    v["data_base64"] = json!("e30=");
    add("data_base64", structured(&v), Want::Dead("invalid_envelope"));

    for ct in ["text/plain", "application/json", "application/xml"] {
        add(
            "wrong content type",
            record(bytes.clone(), &[("content-type", ct.as_bytes())]),
            Want::Dead("invalid_envelope"),
        );
    }
    add(
        "content type not UTF-8",
        record(bytes.clone(), &[("content-type", b"\xff\xfe")]),
        Want::Dead("invalid_envelope"),
    );
    let data = serde_json::to_vec(&valid).unwrap();
    let binary = |ct: &'static [u8]| -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("ce_specversion", b"1.0"),
            ("ce_id", b"b1"),
            ("ce_source", b"urn:h"),
            ("ce_type", b"erasure.requested.v1"),
            ("content-type", ct),
        ]
    };
    add(
        "binary mode, XML content type",
        record(data.clone(), &binary(b"application/xml")),
        Want::Dead("invalid_envelope"),
    );
    let mut h = binary(b"application/json");
    h.retain(|(k, _)| *k != "ce_source");
    add(
        "binary mode without ce_source",
        record(data.clone(), &h),
        Want::Dead("invalid_envelope"),
    );

    let (d, ids) = explicit("h-binary", session, 3);
    add(
        "binary mode, valid",
        record(serde_json::to_vec(&d).unwrap(), &binary(b"application/json")),
        Want::Requested(session, ids),
    );
    let (d, ids) = explicit("h-big-header", session, 1);
    let big = vec![b'x'; 512 * 1024];
    let mut r = structured(&envelope(d));
    r.headers.push(("x-junk".into(), big));
    add("a 512 KiB header", r, Want::Requested(session, ids));
    let (d, ids) = explicit("h-many-headers", session, 1);
    let mut r = structured(&envelope(d));
    r.headers.extend((0..2000).map(|i| (format!("x-h{i}"), b"v".to_vec())));
    add("2,000 headers", r, Want::Requested(session, ids));
    let (d, ids) = explicit("h-padded", session, 2);
    let mut v = envelope(d);
    v["padding"] = json!("p".repeat(2 * 1024 * 1024));
    add(
        "a 2 MiB document (an unknown extension attribute)",
        structured(&v),
        Want::Requested(session, ids),
    );
    let mut v = envelope(valid.clone());
    v["padding"] = json!("p".repeat(9 * 1024 * 1024));
    add("a 9 MiB document", structured(&v), Want::Dead("too_large"));
    let (d, ids) = explicit("h-100k", session, 100_000);
    add(
        "100,000 trace ids",
        structured(&envelope(d)),
        Want::Requested(session, ids),
    );
    let (d, _) = explicit("h-100k-plus-1", session, 100_001);
    add(
        "100,001 trace ids",
        structured(&envelope(d)),
        Want::Dead("too_many_ids"),
    );

    for (i, inj) in INJECTIONS.iter().enumerate() {
        let d = json!({"request_id": format!("h-inject-{i}"), "targets": [{"metadata": {"user_id": inj}}]});
        add(
            "filter injection in a metadata value",
            structured(&envelope(d)),
            Want::NothingFound,
        );
    }
    let d = json!({"request_id": "k", "targets": [{"metadata": {"user_id\") or eq(\"a": "v"}}]});
    add(
        "filter injection in a metadata key",
        structured(&envelope(d)),
        Want::Dead("unsafe_metadata"),
    );
    let d = json!({"request_id": "k", "targets": [{"metadata": {"user_id": "a\u{0}b"}}]});
    add(
        "a NUL byte in a metadata value",
        structured(&envelope(d)),
        Want::Dead("unsafe_metadata"),
    );
    let d = json!({"request_id": "a\u{0}b", "targets": [{"session_id": session, "trace_ids": [Uuid::new_v4()]}]});
    add(
        "a NUL byte in request_id",
        structured(&envelope(d)),
        Want::Dead("invalid_id"),
    );
    cases
}
