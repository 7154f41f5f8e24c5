//! A steady stream through both roles: requests keep arriving while earlier parts wait for their
//! window, so the verifier parks partition heads and pauses while the consumer still delivers what
//! it fetched before the pause. Every part must be verified, none left behind.

use std::time::Duration;

use langsmith_sim::window::Schedule;

use crate::support::private_simulator;
use crate::verify::{all_terminal, requests};
use crate::world::{data_of, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_is_verified_with_nothing_left_behind() {
    let sim = private_simulator();
    sim.sim.clear_faults();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.5 });
    let world = World::new(&sim, 4).await;
    let (data, want) = requests(&world, 2000, 20);
    let extra = "[intake]\nlinger = \"100ms\"\n[window]\nkind = \"fixed\"\ndelay = \"2s\"\n\
                 [limits]\nscope = \"replica\"\nquery_v2_per_second = 1000\n[kafka.properties]\n\"fetch.wait.max.ms\" = \"10\"\n";
    let mut worker = world.spawn_worker(extra, "stream", "all");
    // 200 requests a second for 10 s.
    for chunk in data.chunks(20) {
        world.publish_many(chunk).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outs = world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    worker.terminate();
    assert!(data_of(&outs, "failed").is_empty(), "nothing fails");
    eprintln!(
        "steady stream: {} requests, {} verified events",
        want.len(),
        data_of(&outs, "verified").len()
    );
}
