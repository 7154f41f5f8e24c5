//! A broker outage: while Kafka acknowledges nothing, the intake deletes nothing more, and holds the
//! events of the calls already made instead of queueing them. Its events could not be published nor
//! its offsets committed, and after a long outage the group gives the partitions to other replicas,
//! which would delete and publish it all again; an event queued meanwhile would go out as well.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use langsmith_sim::faults::{Class, FaultSpec};
use serde_json::json;
use uuid::Uuid;

use crate::proxy::{Mode, Proxy};
use crate::support::{private_simulator, wait_for, Broker};
use crate::world::{data_of, Out, Running, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_kafka_acknowledges_nothing_nothing_more_is_deleted() {
    // 400 requests of one id, deleted 5 at a time at 10 calls a second: about 8 s of deletes.
    let (_broker, proxy, world) = behind_a_proxy(400).await;
    let config = world
        .config("[intake]\nmax_batch = 5\nlinger = \"50ms\"\n[limits]\nscope = \"replica\"\ndelete_per_second = 10\n");
    let intake = world.start(config);
    let calls = || world.sim.delete_calls(world.ws).len();
    wait_for("the first delete calls", Duration::from_secs(60), || calls() >= 5).await;

    proxy.set(Mode::Blackhole);
    // The intake notices the silence (1 s), and the calls already past the wait end (at most
    // `max_concurrent_calls`, 4, at 10 a second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (before, left) = (calls(), (400 / 5usize).saturating_sub(calls()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = calls() - before;
    let outs = after_the_outage(&proxy, &world, 400, intake).await;
    assert!(left > 10, "the outage began with {left} calls to make: too few to tell");
    assert_eq!(during, 0, "delete calls made in 4 s of the outage, with {left} to make");
    assert_eq!(
        data_of(&outs, "requested").len(),
        400,
        "every request's event, once the broker is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_calls_answered_while_kafka_is_silent_are_queued_only_after_it() {
    // 200 requests, deleted 10 at a time by 4 calls of 3 s each: calls answer for 3 s after the
    // intake stops making them.
    let (_broker, proxy, world) = behind_a_proxy(200).await;
    let slow = FaultSpec {
        latency_ms: 3000,
        ..FaultSpec::default()
    };
    world.sim.faults().set(Class::Delete, slow);
    let intake = world.start(world.config("[intake]\nmax_batch = 10\nlinger = \"50ms\"\n"));
    let calls = || world.sim.delete_calls(world.ws).len();
    wait_for("the first delete calls", Duration::from_secs(60), || calls() >= 4).await;

    let silent_from = Utc::now();
    proxy.set(Mode::Blackhole);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let back = Utc::now();
    let outs = after_the_outage(&proxy, &world, 200, intake).await;
    // The first event queued during the outage is never acknowledged in it: the intake notices the
    // silence 1 s later, at a turn of its loop (100 ms at most). From 2 s after it, nothing more is
    // queued, though calls are answered.
    let requested: Vec<&Out> = outs.iter().filter(|o| o.topic == "requested").collect();
    let (from, to) = (silent_from.timestamp_millis(), back.timestamp_millis());
    let first = (requested.iter())
        .filter_map(|o| o.timestamp.filter(|t| (from..to).contains(t)))
        .min()
        .expect("events queued during the outage");
    let silence = first + 2000;
    let answered_then = (requested.iter())
        .filter(|o| accepted_at(o).is_some_and(|at| (silence..to).contains(&at.timestamp_millis())))
        .count();
    assert!(
        answered_then > 0,
        "no call was answered while Kafka was silent: the test tells nothing"
    );
    let queued_then = (requested.iter())
        .filter(|o| o.timestamp.is_some_and(|t| (silence..to).contains(&t)))
        .count();
    assert_eq!(
        queued_then, 0,
        "events queued while Kafka was silent ({answered_then} events of calls answered then)"
    );
}

/// A world on a broker of its own, reached through a proxy, with `n` requests of one trace id each
/// (`r-0`, …) published.
async fn behind_a_proxy(n: usize) -> (Broker, Proxy, World) {
    let sim = private_simulator();
    let listener = Proxy::listener();
    let broker = Broker::start(Some(&listener.local_addr().unwrap().to_string()));
    let proxy = Proxy::start(listener, broker.listener.parse().unwrap());
    let world = World::on(&broker.bootstrap, &sim, 1).await;
    let session = world.sessions(1)[0];
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let target = json!({"session_id": session, "trace_ids": [Uuid::new_v4()]});
            json!({"request_id": format!("r-{i}"), "targets": [target]})
        })
        .collect();
    world.publish_many(&requests).await;
    (broker, proxy, world)
}

/// Lets the broker through again, reads until each of the `n` requests has its event, and stops the
/// intake.
async fn after_the_outage(proxy: &Proxy, world: &World, n: usize, (stop, intake): Running) -> Vec<Out> {
    proxy.set(Mode::Pass);
    proxy.reset_all();
    let outs = world
        .collect(Duration::from_secs(120), |o| {
            let events = data_of(o, "requested");
            let ids: BTreeSet<&str> = events.iter().filter_map(|d| d["request_id"].as_str()).collect();
            ids.len() == n
        })
        .await;
    let _ = stop.send(());
    let _ = intake.await;
    outs
}

fn accepted_at(o: &Out) -> Option<DateTime<Utc>> {
    o.json()["data"]["accepted_at"].as_str()?.parse().ok()
}
