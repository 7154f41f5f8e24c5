//! Group membership: a replica that dies for good hands its partitions to the survivor once its
//! session expires, with no new member joining to trigger a rebalance (Tansu 0.6.0 unpatched kept
//! them assigned to the dead member: `scripts/tansu-group-expiry-rebalance.patch`); and a replica
//! reports the lag of the partitions it owns, not of those it gave up.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::intake::{all_requested, explicit_requests, wanted};
use crate::support::{simulator, wait_for};
use crate::verify::{http_addr, metrics_text};
use crate::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_for_good_hands_its_partitions_to_the_survivor() {
    let world = World::new(simulator(), 4).await;
    let sessions = world.sessions(10);
    let extra = "[intake]\nlinger = \"100ms\"\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"\n";
    let mut doomed = world.spawn_worker(extra, "doomed", "intake");
    let mut survivor = world.spawn_worker(extra, "survivor", "intake");
    let (doomed_log, survivor_log) = (world.log_path("doomed"), world.log_path("survivor"));
    let assigned =
        |log: &std::path::Path| std::fs::read_to_string(log).is_ok_and(|l| l.contains("partitions assigned"));
    wait_for("both replicas hold partitions", Duration::from_secs(60), || {
        assigned(&doomed_log) && assigned(&survivor_log)
    })
    .await;

    doomed.kill().expect("SIGKILL");
    doomed.wait().unwrap();
    let reqs = explicit_requests(400, &sessions, 3, 21);
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(&reqs);
    world
        .collect(Duration::from_secs(90), |o| all_requested(o, &want))
        .await;
    let metrics = metrics_text(&http_addr(&std::fs::read_to_string(&survivor_log).unwrap())).await;
    let owned = format!("erasure_partitions_owned{{topic=\"{}\"}} 4", world.topic("requests"));
    assert!(
        metrics.contains(&owned),
        "the survivor owns every partition:\n{metrics}"
    );
    survivor.terminate();
}

/// The partitions whose consumer lag `addr`'s replica reports for `topic`.
async fn lag_partitions(addr: &str, topic: &str) -> BTreeSet<String> {
    let suffix = format!(",topic=\"{topic}\"}}");
    metrics_text(addr)
        .await
        .lines()
        .filter_map(|l| l.strip_prefix("erasure_consumer_lag{partition=\""))
        .filter_map(|l| l.split_once('"').filter(|(_, rest)| rest.starts_with(&suffix)))
        .map(|(p, _)| p.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reports_lag_only_for_the_partitions_it_owns() {
    let world = World::new(simulator(), 4).await;
    let sessions = world.sessions(5);
    let topic = world.topic("requests");
    let extra = "[intake]\nlinger = \"100ms\"\n";
    let mut first = world.spawn_worker(extra, "first", "intake");
    let reqs = explicit_requests(200, &sessions, 2, 31);
    world
        .publish_many(&reqs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .await;
    let want = wanted(&reqs);
    world
        .collect(Duration::from_secs(60), |o| all_requested(o, &want))
        .await;
    let log = |name: &str| std::fs::read_to_string(world.log_path(name)).unwrap_or_default();
    let addr_first = http_addr(&log("first"));
    // The first replica reports all four partitions (their offsets are committed)...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lag_partitions(&addr_first, &topic).await.len() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "no lag for all four partitions");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...then gives two up to a second replica.
    let mut second = world.spawn_worker(extra, "second", "intake");
    wait_for("the rebalance", Duration::from_secs(60), || {
        log("first").matches("partitions assigned").count() >= 2 && log("second").contains("partitions assigned")
    })
    .await;
    let addr_second = http_addr(&log("second"));
    // librdkafka's statistics (every 5 s) go on reporting the partitions given up; over three of
    // its intervals, no partition's lag is reported by both replicas.
    let watch = tokio::time::Instant::now() + Duration::from_secs(15);
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    while tokio::time::Instant::now() < watch {
        a = lag_partitions(&addr_first, &topic).await;
        b = lag_partitions(&addr_second, &topic).await;
        assert!(a.is_disjoint(&b), "lag reported by both replicas: {a:?} and {b:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(a.len() + b.len(), 4, "every partition reported once: {a:?} and {b:?}");
    first.terminate();
    second.terminate();
}
