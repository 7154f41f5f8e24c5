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
    // `b`'s request at offset 0 waits for its key; `a`'s 20 behind it are done.
    let metadata = taken_over(21, |i| i == 0).await;
    assert!(!metadata.contains('~'), "a few offsets fit in the metadata: {metadata}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_done_past_what_a_commit_s_metadata_can_name_are_not_redone_either() {
    // `b`'s requests at offset 0 and at five offsets in thirteen: 30,000 offsets, `a`'s done
    // between `b`'s, which a commit's 4,000 bytes of metadata cannot name.
    let metadata = taken_over(30_000, |i| i == 0 || i * 7_919 % 13 >= 8).await;
    assert!(metadata.contains('~'), "the commit names a saved record: {metadata}");
}

/// Publishes `n` requests, those at the offsets `of_b` says for workspace `b` (whose key is
/// refused), the others for `a`; waits for `a`'s to be done and for the offsets done past the head
/// to be committed, then stops the replica. A new one, with `b`'s key accepted, must do `b`'s
/// requests and none of `a`'s again. Returns the metadata committed by the first.
async fn taken_over(n: usize, of_b: impl Fn(usize) -> bool) -> String {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    world.sessions(2);
    let (b, b_key, mut config) = with_refused_b(&world, &sim, &["b-project".to_owned()], "");
    config.intake.shutdown_grace = Duration::from_secs(1);
    config.intake.audit_wait = Duration::from_millis(500);
    let (stop, intake) = world.start(config.clone());

    let requests: Vec<_> = (0..n)
        .map(|i| match of_b(i) {
            true => {
                let target = json!({"session_name": "b-project", "trace_ids": [Uuid::new_v4()]});
                json!({"request_id": format!("b-{i}"), "workspace": "b", "targets": [target]})
            }
            false => {
                let target = json!({"session_name": "project-1", "trace_ids": [Uuid::new_v4()]});
                json!({"request_id": format!("a-{i}"), "targets": [target]})
            }
        })
        .collect();
    let n_b = (0..n).filter(|i| of_b(*i)).count();
    world.publish_many(&requests).await;
    world
        .collect(Duration::from_secs(120), |o| events_of(o, "a-").len() == n - n_b)
        .await;
    // The offsets done past the head are committed each second; past 4,000 bytes, the commit
    // names their record once Kafka has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (offset, metadata) = loop {
        let (offset, metadata) = world.committed_with_metadata(1).await[&0].clone();
        let named = !metadata.is_empty() && (n < 20_000 || metadata.contains('~'));
        if named || Instant::now() > deadline {
            break (offset, metadata);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(offset, 0, "the head holds the committed offset");
    assert!(!metadata.is_empty(), "the offsets done past it were committed with it");
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();

    bind_key(&world, b, b_key);
    let (stop, intake) = world.start(config);
    let outs = world
        .collect(Duration::from_secs(120), |o| events_of(o, "b-").len() == n_b)
        .await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    let a = events_of(&outs, "a-");
    assert_eq!(a.len(), n - n_b);
    let again: Vec<_> = a.iter().filter(|(_, k)| **k != 1).take(5).collect();
    assert!(
        again.is_empty(),
        "each of `a`'s requests has one deletion-requested event: {again:?}"
    );
    assert_eq!(
        world.committed(1).await[&0],
        n as i64,
        "every offset committed in the end"
    );
    metadata
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
