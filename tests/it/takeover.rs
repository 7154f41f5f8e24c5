//! A replica taking a partition over does not redo the work done behind a stuck head: the intake
//! commits, with the offset before the head, the offsets done past it (commit metadata), and the
//! next owner completes those at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::isolation::{bind_key, with_refused_b};
use crate::support::private_simulator;
use crate::world::{data_of, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_taking_over_does_not_redo_what_was_done_behind_a_stuck_head() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    world.sessions(2);
    let (b, b_key, mut config) = with_refused_b(&world, &sim, &["b-project".to_owned()], "");
    config.intake.shutdown_grace = Duration::from_secs(1);
    config.intake.audit_wait = Duration::from_millis(500);
    let (stop, intake) = world.start(config.clone());

    // `b`'s request at offset 0 waits for its key; `a`'s 20 behind it are done.
    let target = json!({"session_name": "b-project", "trace_ids": [Uuid::new_v4()]});
    let mut requests = vec![json!({"request_id": "b-0", "workspace": "b", "targets": [target]})];
    requests.extend((0..20).map(|i| {
        let target = json!({"session_name": "project-1", "trace_ids": [Uuid::new_v4()]});
        json!({"request_id": format!("a-{i}"), "targets": [target]})
    }));
    world.publish_many(&requests).await;
    world
        .collect(Duration::from_secs(20), |o| events_of(o, "a-").len() == 20)
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (offset, metadata) = loop {
        let (offset, metadata) = world.committed_with_metadata(1).await[&0].clone();
        if !metadata.is_empty() || Instant::now() > deadline {
            break (offset, metadata);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(offset, 0, "the head holds the committed offset");
    assert!(!metadata.is_empty(), "the offsets done past it were committed with it");
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();

    // The next owner, with `b`'s key accepted, does `b`'s request and none of `a`'s again.
    bind_key(&world, b, b_key);
    let (stop, intake) = world.start(config);
    let outs = world
        .collect(Duration::from_secs(30), |o| !events_of(o, "b-").is_empty())
        .await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    let a = events_of(&outs, "a-");
    assert_eq!(a.len(), 20);
    assert!(
        a.values().all(|n| *n == 1),
        "each of `a`'s requests has one deletion-requested event: {a:?}"
    );
    assert_eq!(world.committed(1).await[&0], 21, "every offset committed in the end");
}

/// Deletion-requested events per request whose id starts with `prefix`.
fn events_of(o: &[crate::world::Out], prefix: &str) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for d in data_of(o, "requested") {
        let id = d["request_id"].as_str().unwrap_or_default();
        if id.starts_with(prefix) {
            *n.entry(id.to_owned()).or_default() += 1;
        }
    }
    n
}
