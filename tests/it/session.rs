//! Group membership: a replica that dies for good hands its partitions to the survivor once its
//! session expires, with no new member joining to trigger a rebalance. (Tansu 0.6.0 unpatched kept
//! them assigned to the dead member: `scripts/tansu-group-expiry-rebalance.patch`.)

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
