//! The logs of a full run (both roles, explicit and metadata requests, an invalid event, verification)
//! hold neither the API key nor the metadata values that identify the person.

use std::collections::BTreeSet;
use std::time::Duration;

use langsmith_sim::window::Schedule;
use serde_json::json;

use crate::support::private_simulator;
use crate::world::{data_of, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_logs_no_key_and_no_personal_data() {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 2).await;
    let sessions = world.sessions(2);
    let person = "pii-person-7781-";
    let gen = json!({"session_id": sessions[0], "traces": 3, "return_ids": true,
                     "metadata": [{"key": "user_id", "prefix": person, "distinct": 1}]});
    let (_, selected) = world
        .sim
        .state()
        .generate(world.ws, serde_json::from_value(gen).unwrap())
        .unwrap();
    let gen = json!({"session_id": sessions[1], "traces": 2, "return_ids": true});
    let (_, explicit) = world
        .sim
        .state()
        .generate(world.ws, serde_json::from_value(gen).unwrap())
        .unwrap();
    let value = format!("{person}0");
    world
        .publish_many(&[
            json!({"request_id": "by-metadata", "targets": [{"metadata": {"user_id": value}, "session_id": sessions[0]}]}),
            json!({"request_id": "explicit", "targets": [{"session_id": sessions[1], "trace_ids": explicit}]}),
            // Invalid: a control character in a metadata value; dead-lettered without echoing it.
            json!({"request_id": "bad", "targets": [{"metadata": {"user_id": "pii-secret-4242\u{1}"}}]}),
        ])
        .await;
    let extra = "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"2s\"\n";
    let mut worker = world.spawn_worker(extra, "all", "all");
    let outs = world
        .collect(Duration::from_secs(120), |o| {
            let done: BTreeSet<String> = data_of(o, "verified")
                .iter()
                .filter(|d| !d["trace_ids"].as_array().unwrap().is_empty())
                .map(|d| d["request_id"].as_str().unwrap().to_owned())
                .collect();
            done.len() == 2 && o.iter().any(|x| x.topic == "dlq")
        })
        .await;
    worker.terminate();
    let verified: BTreeSet<String> = data_of(&outs, "verified")
        .iter()
        .flat_map(|d| {
            d["trace_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
        })
        .collect();
    for id in selected.iter().chain(&explicit) {
        assert!(verified.contains(&id.to_string()), "{id} verified");
    }
    let log = std::fs::read_to_string(world.log_path("all")).unwrap();
    assert!(log.contains("checked"), "the run was logged:\n{log}");
    let key = std::fs::read_to_string(&world.key_file).unwrap();
    assert!(!log.contains(key.trim()), "the API key is in the log");
    for secret in [person, "pii-secret-4242"] {
        assert!(!log.contains(secret), "personal data {secret:?} is in the log:\n{log}");
    }
    for o in &outs {
        let text = String::from_utf8_lossy(&o.payload);
        if o.topic != "dlq" {
            assert!(!text.contains(person), "personal data in an output event: {text}");
        }
    }
}
