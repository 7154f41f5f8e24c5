//! Parts the verifier reads as another producer wrote them: a `verify_after` far ahead (a skewed
//! clock, another worker's window) is checked when this worker's own window says, not waited on
//! for ever; a workspace this verifier does not configure, or a field it does not know (a rolling
//! upgrade), still ends the part in a terminal event, never in the DLQ.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use erasure_worker::event::{DeletionRequested, SourceRef};
use erasure_worker::output::{encode, Output};
use erasure_worker::publish::Publisher;
use uuid::Uuid;

use crate::support::private_simulator;
use crate::world::{data_of, World};

fn part(request_id: &str, workspace: &str, session: Uuid, verify_after: chrono::DateTime<Utc>) -> DeletionRequested {
    let now = Utc::now();
    DeletionRequested {
        request_id: request_id.into(),
        workspace: workspace.into(),
        session_id: session,
        trace_ids: vec![Uuid::new_v4()],
        part: 0,
        parts: 1,
        accepted_at: now,
        verify_after,
        deadline: now + TimeDelta::days(30),
        attempt: 1,
        source: SourceRef {
            topic: "elsewhere".into(),
            partition: 0,
            offset: 0,
            event_id: "e-1".into(),
            event_source: "urn:another-producer".into(),
        },
        audit_log_ids: Vec::new(),
    }
}

/// Publishes `part` as the intake would, with `change` applied to its CloudEvents JSON first.
async fn publish(
    world: &World,
    config: &erasure_worker::config::Config,
    part: DeletionRequested,
    change: impl FnOnce(&mut serde_json::Value),
) {
    let encoded = encode(config, &Output::Requested(part));
    let mut json: serde_json::Value = serde_json::from_slice(&encoded.payload).unwrap();
    change(&mut json);
    let payload = serde_json::to_vec(&json).unwrap();
    let record = erasure_worker::publish::Record {
        payload: &payload,
        ..encoded.record()
    };
    let publisher = Publisher::new(erasure_worker::kafka::client_config(&world.bootstrap)).unwrap();
    publisher.send(record).await.expect("published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_time_ten_years_ahead_is_checked_at_the_windows_bound() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let config = world.config("[window]\nkind = \"fixed\"\ndelay = \"1s\"\n");
    let far = part("far-ahead", "main", session, Utc::now() + TimeDelta::days(3650));
    publish(&world, &config, far, |_| {}).await;
    let (stop, verifier) = world.start_verifier(config);
    let outs = world
        .collect(Duration::from_secs(30), |o| !data_of(o, "verified").is_empty())
        .await;
    stop.send(()).unwrap();
    verifier.await.unwrap().unwrap();
    assert_eq!(data_of(&outs, "verified")[0]["request_id"], "far-ahead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_workspace_fails_and_an_unknown_field_is_tolerated() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let config = world.config("[window]\nkind = \"fixed\"\ndelay = \"1s\"\n");
    let now = Utc::now();
    publish(&world, &config, part("drifted", "retired", session, now), |_| {}).await;
    let newer = |j: &mut serde_json::Value| j["data"]["added_by_a_newer_worker"] = serde_json::json!(true);
    publish(&world, &config, part("upgraded", "main", session, now), newer).await;
    let (stop, verifier) = world.start_verifier(config);
    let outs = world
        .collect(Duration::from_secs(30), |o| {
            !data_of(o, "failed").is_empty() && !data_of(o, "verified").is_empty()
        })
        .await;
    stop.send(()).unwrap();
    verifier.await.unwrap().unwrap();
    let failed = &data_of(&outs, "failed")[0];
    assert_eq!(
        (failed["request_id"].as_str(), failed["reason"].as_str()),
        (Some("drifted"), Some("unknown_workspace"))
    );
    assert_eq!(data_of(&outs, "verified")[0]["request_id"], "upgraded");
    assert!(data_of(&outs, "dlq").is_empty(), "nothing dead-lettered");
}
