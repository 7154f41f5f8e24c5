use chrono::TimeZone;
use serde_json::{json, Value};

use super::*;
use crate::event::SessionRef;

fn limits() -> Limits {
    Limits {
        max_event_bytes: 64 * 1024,
        max_ids_per_request: 5,
        workspaces: vec!["main".into(), "eu".into()],
        default_workspace: Some("main".into()),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

const T1: &str = "0b0c3f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f";
const S1: &str = "4f1e2d3c-5b6a-4798-8a9b-0c1d2e3f4a5b";

fn event(data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0", "id": "evt-1", "source": "urn:crm", "type": "erasure.requested.v1",
        "time": "2026-11-20T10:00:00Z", "datacontenttype": "application/json", "data": data,
    }))
    .unwrap()
}

fn parse(payload: &[u8], headers: Vec<(&str, Option<&[u8]>)>) -> Result<Request, Rejection> {
    let rec = Incoming {
        payload: Some(payload),
        headers,
        topic: "in",
        partition: 2,
        offset: 7,
    };
    parse_request(&rec, &limits(), now())
}

fn reason(data: Value) -> &'static str {
    parse(&event(data), vec![]).unwrap_err().reason.as_str()
}

#[test]
fn a_good_structured_event_parses() {
    let data = json!({"request_id": "req-1", "targets": [
        {"session_id": S1, "trace_ids": [T1, T1]},
        {"session_name": "support bot", "metadata": {"user_id": "u\"1"}, "start_time": "2026-01-01T00:00:00Z"},
    ]});
    let r = parse(
        &event(data),
        vec![("content-type", Some(b"application/cloudevents+json"))],
    )
    .unwrap();
    assert_eq!(r.workspace, "main");
    assert_eq!(
        r.deadline,
        Utc.with_ymd_and_hms(2026, 12, 20, 10, 0, 0).unwrap(),
        "event time + 30 days"
    );
    assert_eq!(
        r.targets[0],
        Target::Explicit {
            session: SessionRef::Id(S1.parse().unwrap()),
            trace_ids: vec![T1.parse().unwrap()]
        }
    );
    assert!(matches!(&r.targets[1], Target::Selector { session: Some(SessionRef::Name(n)), .. } if n == "support bot"));
    assert_eq!(
        (r.source.partition, r.source.offset, r.source.event_id.as_str()),
        (2, 7, "evt-1")
    );
}

#[test]
fn a_selector_searches_every_run_of_a_trace_unless_root_only() {
    let root_only = |target: Value| {
        let r = parse(&event(json!({"request_id": "r", "targets": [target]})), vec![]).unwrap();
        match &r.targets[0] {
            Target::Selector { root_only, .. } => *root_only,
            other => panic!("not a selector: {other:?}"),
        }
    };
    assert!(!root_only(json!({"metadata": {"k": "v"}})), "the default: any run");
    assert!(root_only(json!({"metadata": {"k": "v"}, "root_only": true})));
    assert_eq!(
        reason(json!({"request_id": "r", "targets": [{"session_id": S1, "trace_ids": [T1], "root_only": true}]})),
        "schema_violation",
        "root_only goes with metadata only"
    );
}

#[test]
fn binary_mode_reads_ce_headers() {
    let data = serde_json::to_vec(
        &json!({"request_id": "r", "workspace": "eu", "targets": [{"session_id": S1, "trace_ids": [T1]}]}),
    )
    .unwrap();
    let headers: Vec<(&str, Option<&[u8]>)> = vec![
        ("ce_specversion", Some(b"1.0")),
        ("ce_id", Some(b"e-9")),
        ("ce_source", Some(b"urn:x")),
        ("ce_type", Some(b"erasure.requested.v1")),
        ("content-type", Some(b"application/json")),
    ];
    let r = parse(&data, headers.clone()).unwrap();
    assert_eq!((r.workspace.as_str(), r.source.event_id.as_str()), ("eu", "e-9"));
    let mut wrong = headers;
    wrong[3] = ("ce_type", Some(b"something.else"));
    assert_eq!(parse(&data, wrong).unwrap_err().reason.as_str(), "invalid_envelope");
}

#[test]
fn each_kind_of_bad_input_has_its_reason() {
    let t = |targets: Value| json!({"request_id": "r", "targets": targets});
    assert_eq!(
        parse(b"{not json", vec![]).unwrap_err().reason.as_str(),
        "malformed_json"
    );
    assert_eq!(
        parse(&[0xff, 0xfe], vec![]).unwrap_err().reason.as_str(),
        "malformed_json"
    );
    assert_eq!(
        parse(br#"{"specversion": 1}"#, vec![]).unwrap_err().reason.as_str(),
        "invalid_envelope"
    );
    let v03 = br#"{"specversion":"0.3","id":"a","source":"b","type":"erasure.requested.v1","data":{}}"#;
    assert_eq!(parse(v03, vec![]).unwrap_err().reason.as_str(), "invalid_envelope");
    let long_id =
        json!({"specversion": "1.0", "id": "i".repeat(513), "source": "s", "type": "erasure.requested.v1", "data": {}});
    let long_id = serde_json::to_vec(&long_id).unwrap();
    assert_eq!(parse(&long_id, vec![]).unwrap_err().reason.as_str(), "invalid_envelope");
    assert_eq!(
        parse(&event(json!({})), vec![("content-type", Some(b"text/plain"))])
            .unwrap_err()
            .reason
            .as_str(),
        "invalid_envelope"
    );
    assert_eq!(
        parse(&vec![b' '; 70 * 1024], vec![]).unwrap_err().reason.as_str(),
        "too_large"
    );
    assert_eq!(
        reason(json!({"request_id": "r", "targets": [], "extra": 1})),
        "schema_violation"
    );
    assert_eq!(reason(json!({"request_id": 5, "targets": []})), "schema_violation");
    assert_eq!(reason(t(json!([]))), "empty_request");
    assert_eq!(reason(t(json!([{"session_id": S1, "trace_ids": []}]))), "empty_request");
    assert_eq!(
        reason(t(json!([{"session_id": S1, "trace_ids": ["nope"]}]))),
        "invalid_id"
    );
    assert_eq!(
        reason(t(json!([{"session_id": S1, "trace_ids": [T1.replace('-', "")]}]))),
        "invalid_id"
    );
    assert_eq!(reason(t(json!([{"session_id": "x", "trace_ids": [T1]}]))), "invalid_id");
    assert_eq!(reason(t(json!([{"trace_ids": [T1]}]))), "schema_violation");
    let six: Vec<String> = (0..6)
        .map(|i| format!("0b0c3f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2{i}"))
        .collect();
    assert_eq!(reason(t(json!([{"session_id": S1, "trace_ids": six}]))), "too_many_ids");
    assert_eq!(reason(t(json!([{"metadata": {"bad key)": "v"}}]))), "unsafe_metadata");
    assert_eq!(
        reason(t(json!([{"metadata": {"k": "null\u{0}byte"}}]))),
        "unsafe_metadata"
    );
    assert_eq!(reason(t(json!([{"metadata": {}}]))), "empty_request");
    assert_eq!(
        reason(json!({"request_id": "r", "workspace": "nope", "targets": [{"metadata": {"k": "v"}}]})),
        "unknown_workspace"
    );
    assert_eq!(
        reason(json!({"request_id": "bad id!", "targets": [{"metadata": {"k": "v"}}]})),
        "invalid_id"
    );
    assert_eq!(
        reason(json!({"request_id": "r", "deadline": "tomorrow", "targets": [{"metadata": {"k": "v"}}]})),
        "invalid_time"
    );
}

#[test]
fn details_never_echo_values() {
    let secret = "jane.doe@example.com";
    for data in [
        json!({"request_id": "r", "targets": [{"metadata": {"email": format!("{secret}\u{1}")}}]}),
        json!({"request_id": "r", "targets": [{"session_id": S1, "trace_ids": [secret]}]}),
        json!({"request_id": secret, "targets": []}),
        json!({"request_id": "r", "targets": [{"session_id": S1, "trace_ids": [T1], secret: 1}]}),
    ] {
        let r = parse(&event(data), vec![]).unwrap_err();
        assert!(!r.detail.contains("jane"), "{r:?}");
    }
}
