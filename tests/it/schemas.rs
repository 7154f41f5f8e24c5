//! The schemas in `schemas/` and the Rust types agree on every example.

use std::path::{Path, PathBuf};

use erasure_worker::event::{
    parse_request, DeletionFailed, DeletionRequested, DeletionVerified, ExamplesErased, ExamplesFailed, Incoming,
    Limits, REQUESTED_TYPE,
};
use serde_json::{json, Value};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

pub fn validator(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn examples(name: &str, kind: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir().join("examples").join(name).join(kind))
        .expect("examples folder")
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.display().to_string(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {kind} examples for {name}");
    out
}

/// Whether the worker's own parsing accepts `data` as the data of an input event.
fn rust_accepts(name: &str, data: &Value) -> bool {
    match name {
        "erasure.requested.v1" => {
            let envelope =
                json!({"specversion": "1.0", "id": "e", "source": "urn:t", "type": REQUESTED_TYPE, "data": data});
            let payload = serde_json::to_vec(&envelope).unwrap();
            let limits = Limits {
                max_event_bytes: 1 << 20,
                max_ids_per_request: 100_000,
                workspaces: vec!["main".into()],
                default_workspace: Some("main".into()),
            };
            let rec = Incoming {
                payload: Some(&payload),
                headers: vec![],
                topic: "t",
                partition: 0,
                offset: 0,
            };
            parse_request(&rec, &limits, chrono::Utc::now()).is_ok()
        }
        "erasure.deletion.requested.v1" => round_trips::<DeletionRequested>(data),
        "erasure.deletion.verified.v1" => round_trips::<DeletionVerified>(data),
        "erasure.deletion.failed.v1" => round_trips::<DeletionFailed>(data),
        "erasure.examples.erased.v1" => round_trips::<ExamplesErased>(data) && examples_named(data),
        "erasure.examples.failed.v1" => round_trips::<ExamplesFailed>(data) && example_reason(data),
        other => panic!("no Rust type for {other}"),
    }
}

/// The worker publishes an erased event only for examples it erased.
fn examples_named(data: &Value) -> bool {
    data["example_ids"].as_array().is_some_and(|ids| !ids.is_empty())
}

/// The reasons an example can fail for (the others are about traces and their projects).
fn example_reason(data: &Value) -> bool {
    ["rejected_by_api", "still_present", "check_rejected", "forbidden"].contains(&data["reason"].as_str().unwrap_or(""))
}

fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(data: &Value) -> bool {
    serde_json::from_value::<T>(data.clone()).is_ok_and(|t| {
        let back = serde_json::to_value(&t).unwrap();
        // Timestamps may be re-rendered; compare as instants.
        normalise(&back) == normalise(data)
    })
}

fn normalise(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normalise(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => json!(t.timestamp_micros()),
            Err(_) => v.clone(),
        },
        _ => v.clone(),
    }
}

#[test]
fn schemas_and_rust_types_agree_on_every_example() {
    for name in [
        "erasure.requested.v1",
        "erasure.deletion.requested.v1",
        "erasure.deletion.verified.v1",
        "erasure.deletion.failed.v1",
        "erasure.examples.erased.v1",
        "erasure.examples.failed.v1",
    ] {
        let schema = validator(name);
        let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
        assert!(
            text.contains("\"additionalProperties\": false"),
            "{name} must be closed"
        );
        for (path, example) in examples(name, "good") {
            assert!(
                schema.is_valid(&example),
                "{path}: schema rejects a good example: {:?}",
                schema.validate(&example).err()
            );
            assert!(
                rust_accepts(name, &example),
                "{path}: the Rust types reject a good example"
            );
        }
        for (path, example) in examples(name, "bad") {
            assert!(!schema.is_valid(&example), "{path}: schema accepts a bad example");
            assert!(
                !rust_accepts(name, &example),
                "{path}: the Rust types accept a bad example"
            );
        }
    }
}
