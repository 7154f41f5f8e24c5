//! A part whose `verify_after` lies far ahead (a producer with a skewed clock, or another worker's
//! window) is checked when this worker's own window says, not waited on for ever.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use erasure_worker::event::{DeletionRequested, SourceRef};
use erasure_worker::output::{encode, Output};
use erasure_worker::publish::Publisher;
use uuid::Uuid;

use crate::support::private_simulator;
use crate::world::{data_of, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_time_ten_years_ahead_is_checked_at_the_windows_bound() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let config = world.config("[window]\nkind = \"fixed\"\ndelay = \"1s\"\n");
    let now = Utc::now();
    let part = DeletionRequested {
        request_id: "far-ahead".into(),
        workspace: "main".into(),
        session_id: session,
        trace_ids: vec![Uuid::new_v4()],
        part: 0,
        parts: 1,
        accepted_at: now,
        verify_after: now + TimeDelta::days(3650),
        deadline: now + TimeDelta::days(30),
        attempt: 1,
        source: SourceRef {
            topic: "elsewhere".into(),
            partition: 0,
            offset: 0,
            event_id: "e-1".into(),
            event_source: "urn:skewed".into(),
        },
    };
    let publisher = Publisher::new(erasure_worker::kafka::client_config(&world.bootstrap)).unwrap();
    publisher.send(encode(&config, &Output::Requested(part)).record()).await;
    let (stop, verifier) = world.start_verifier(config);
    let outs = world
        .collect(Duration::from_secs(30), |o| !data_of(o, "verified").is_empty())
        .await;
    stop.send(()).unwrap();
    verifier.await.unwrap().unwrap();
    assert_eq!(data_of(&outs, "verified")[0]["request_id"], "far-ahead");
}
