//! A broker outage: while Kafka acknowledges nothing, the intake deletes nothing more. Its events
//! could not be published nor its offsets committed, and after a long outage the group gives the
//! partitions to other replicas, which would delete and publish it all again.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::proxy::{Mode, Proxy};
use crate::support::{private_simulator, wait_for, Broker};
use crate::world::{data_of, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_kafka_acknowledges_nothing_nothing_more_is_deleted() {
    let sim = private_simulator();
    let listener = Proxy::listener();
    let broker = Broker::start(Some(&listener.local_addr().unwrap().to_string()));
    let proxy = Proxy::start(listener, broker.listener.parse().unwrap());
    let world = World::on(&broker.bootstrap, &sim, 1).await;
    let session = world.sessions(1)[0];
    // 400 requests of one id, deleted 5 at a time at 10 calls a second: about 8 s of deletes.
    let requests: Vec<_> = (0..400)
        .map(|i| {
            let target = json!({"session_id": session, "trace_ids": [Uuid::new_v4()]});
            json!({"request_id": format!("o-{i}"), "targets": [target]})
        })
        .collect();
    world.publish_many(&requests).await;
    let config = world
        .config("[intake]\nmax_batch = 5\nlinger = \"50ms\"\n[limits]\nscope = \"replica\"\ndelete_per_second = 10\n");
    let (stop, intake) = world.start(config);
    let calls = || world.sim.delete_calls(world.ws).len();
    wait_for("the first delete calls", Duration::from_secs(60), || calls() >= 5).await;

    proxy.set(Mode::Blackhole);
    // The intake notices the silence (1 s), and the calls already past the wait end (at most
    // `max_concurrent_calls`, 4, at 10 a second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (before, left) = (calls(), (400 / 5usize).saturating_sub(calls()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = calls() - before;
    proxy.set(Mode::Pass);
    proxy.reset_all();

    let outs = world
        .collect(Duration::from_secs(120), |o| {
            let events = data_of(o, "requested");
            let ids: BTreeSet<&str> = events.iter().filter_map(|d| d["request_id"].as_str()).collect();
            ids.len() == 400
        })
        .await;
    let _ = stop.send(());
    let _ = intake.await;
    assert!(left > 10, "the outage began with {left} calls to make: too few to tell");
    assert_eq!(during, 0, "delete calls made in 4 s of the outage, with {left} to make");
    assert_eq!(
        data_of(&outs, "requested").len(),
        400,
        "every request's event, once the broker is back"
    );
}
