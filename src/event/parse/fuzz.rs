//! Property-based fuzzing of the input parser (cargo-fuzz needs a nightly toolchain, which this
//! machine cannot fetch): arbitrary bytes, mutated valid events and arbitrary JSON in `data` never
//! panic, and every rejection names one of the documented DLQ reasons without echoing metadata values.
//! The budget is fixed (cases below), so CI runs it in seconds.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const REASONS: [&str; 10] = [
    "malformed_json",
    "invalid_envelope",
    "schema_violation",
    "invalid_id",
    "empty_request",
    "too_many_ids",
    "unsafe_metadata",
    "unknown_workspace",
    "invalid_time",
    "too_large",
];

fn limits() -> Limits {
    Limits {
        max_event_bytes: 16 * 1024,
        max_ids_per_request: 50,
        workspaces: vec!["main".into()],
        default_workspace: Some("main".into()),
    }
}

fn check(payload: &[u8], headers: Vec<(&str, Option<&[u8]>)>) -> Result<Request, Rejection> {
    let rec = Incoming {
        payload: Some(payload),
        headers,
        topic: "in",
        partition: 0,
        offset: 1,
    };
    let result = parse_request(&rec, &limits(), Utc::now());
    match &result {
        Ok(r) => {
            assert!(!r.targets.is_empty(), "an accepted request has targets");
            let ids: usize = r.targets.iter().map(Target::ids).sum();
            assert!(ids <= limits().max_ids_per_request);
        }
        Err(e) => assert!(
            REASONS.contains(&e.reason.as_str()),
            "undocumented reason {:?}",
            e.reason
        ),
    }
    result
}

fn valid() -> Value {
    json!({"specversion": "1.0", "id": "e1", "source": "urn:x", "type": "erasure.requested.v1",
           "data": {"request_id": "r1", "targets": [
               {"session_id": "4f1e2d3c-5b6a-4798-8a9b-0c1d2e3f4a5b", "trace_ids": ["0b0c3f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"]},
               {"metadata": {"user_id": "u-1842"}, "session_name": "bot"},
               {"example_ids": ["9b1f3c7e-2d4a-4e8b-9c1d-0a2b3c4d5e6f"]}]}})
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("0b0c3f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f")),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("targets".to_owned()),
                    Just("trace_ids".to_owned()),
                    Just("metadata".to_owned()),
                    Just("session_id".to_owned()),
                    Just("request_id".to_owned()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = check(&bytes, vec![]);
        let _ = check(&bytes, vec![("ce_specversion", Some(b"1.0")), ("ce_type", Some(b"erasure.requested.v1"))]);
    }

    #[test]
    fn mutated_valid_events_never_panic(cut in 0usize..400, flips in prop::collection::vec((0usize..400, any::<u8>()), 0..6)) {
        let mut bytes = serde_json::to_vec(&valid()).unwrap();
        for (at, b) in flips {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        let _ = check(&bytes, vec![]);
    }

    #[test]
    fn arbitrary_data_never_panics_and_rejections_hide_values(data in json_value(), secret in "[a-z]{12}") {
        let mut event = valid();
        event["data"] = data;
        let _ = check(&serde_json::to_vec(&event).unwrap(), vec![]);
        // A metadata value with a control character is refused without being echoed.
        let mut event = valid();
        event["data"]["targets"][1]["metadata"]["user_id"] = json!(format!("{secret}\u{7}') or eq(1,1"));
        let e = check(&serde_json::to_vec(&event).unwrap(), vec![]).unwrap_err();
        prop_assert_eq!(e.reason.as_str(), "unsafe_metadata");
        prop_assert!(!e.detail.contains(&secret));
    }
}
