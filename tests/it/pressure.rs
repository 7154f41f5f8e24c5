//! Backpressure and selectors: with the input paused at the in-flight bound, selectors being
//! resolved must not hold what the events behind them need to finish.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::support::private_simulator;
use crate::world::{data_of, World};

/// 70 selectors (more than a workspace's 64 resolutions at once), then 40 explicit requests, read
/// with a bound of 100 ids: the input pauses while every resolution permit is taken. A selector
/// that waited for room after its last page, holding its permit, left the explicit requests (whose
/// ids hold the bound) without a permit: nothing finished again. Every request must end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_waiting_for_room_do_not_starve_the_events_that_hold_the_bound() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let session = world.sessions(1)[0];
    let mut data = Vec::new();
    for i in 0..70 {
        let metadata = json!([{"key": "user_id", "prefix": format!("s{i}-"), "distinct": 1}]);
        let gen = json!({"session_id": session, "traces": 1, "metadata": metadata});
        world
            .sim
            .state()
            .generate(world.ws, serde_json::from_value(gen).unwrap())
            .unwrap();
        data.push(json!({"request_id": format!("sel-{i}"), "targets": [{"metadata": {"user_id": format!("s{i}-0")}}]}));
    }
    for (i, trace) in world.traces(session, 40).into_iter().enumerate() {
        data.push(
            json!({"request_id": format!("exp-{i}"), "targets": [{"session_id": session, "trace_ids": [trace]}]}),
        );
    }
    world.publish_many(&data).await;
    let config = "[intake]\nlinger = \"200ms\"\nmax_batch = 50\nmax_in_flight_ids = 100\n";
    let (stop, intake) = world.start(world.config(config));
    let all = |o: &[crate::world::Out]| {
        let done: BTreeSet<String> = data_of(o, "requested")
            .iter()
            .map(|d| d["request_id"].to_string())
            .collect();
        done.len() == data.len()
    };
    let (outs, finished) = world.collect_until(Duration::from_secs(90), all).await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    let done: BTreeSet<String> = data_of(&outs, "requested")
        .iter()
        .map(|d| d["request_id"].to_string())
        .collect();
    assert!(finished, "{} of {} requests got their events", done.len(), data.len());
}
