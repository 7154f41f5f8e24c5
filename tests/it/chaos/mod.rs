//! The chaos suite: two intake and two verifier replicas (worker processes) behind fault proxies
//! to the broker and the API, while a driver SIGKILLs replicas, cuts, black-holes, resets and slows
//! both links, and turns on 429 storms and 5xx bursts; one workspace's key is refused for a while,
//! another workspace is unreachable for a while, and a project answers 403 for a while. A reconciler
//! then proves nothing was lost.
//!
//! Knobs (environment): CHAOS_REQUESTS (default 20000), CHAOS_SECONDS of faults (default 90),
//! CHAOS_LONG_OUTAGE_SECONDS (default 15; broker and API outages that long, past the 6 s group
//! session), CHAOS_SEED, CHAOS_IDLE_SECONDS (default 180: the run fails once no request has
//! finished for that long).

mod commits;
mod driver;
mod examples;
mod input;
mod plan;
mod reconcile;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use langsmith_sim::window::Schedule;
use serde_json::json;
use uuid::Uuid;

use crate::proxy::Proxy;
use crate::support::{knob, private_simulator, Broker};
use crate::world::World;
use commits::Commits;
use driver::{Chaos, Replicas};

const PARTITIONS: i32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_request_ends_and_nothing_is_lost() {
    let n = knob("CHAOS_REQUESTS", 20_000) as usize;
    let seconds = knob("CHAOS_SECONDS", 90);
    let long = Duration::from_secs(knob("CHAOS_LONG_OUTAGE_SECONDS", 15));
    let seed = knob("CHAOS_SEED", 1);
    let began = Instant::now();

    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.5 });
    driver::calm(&sim.sim);
    let listener = Proxy::listener();
    let broker = Broker::start(Some(&listener.local_addr().unwrap().to_string()));
    let broker_proxy = Proxy::start(listener, broker.listener.parse().unwrap());
    let sim_addr = sim.base_url.trim_start_matches("http://").parse().unwrap();
    let api_proxy = Proxy::start(Proxy::listener(), sim_addr);

    let mut world = World::on(&broker.bootstrap, &sim, PARTITIONS).await;
    world.sim_url = format!("http://{}", api_proxy.addr);
    let (second, second_key) = sim.workspace();
    let second_key_file = std::env::temp_dir().join(format!("{}.second.key", world.prefix));
    std::fs::write(&second_key_file, &second_key).unwrap();
    // The third workspace is reached through a proxy of its own, to be cut alone.
    let (third, third_key) = sim.workspace();
    let third_key_file = std::env::temp_dir().join(format!("{}.third.key", world.prefix));
    std::fs::write(&third_key_file, &third_key).unwrap();
    let third_proxy = Proxy::start(Proxy::listener(), sim_addr);
    let sessions_of = |ws: Uuid, name: &str| -> Vec<Uuid> {
        (0..30)
            .map(|i| {
                let new = serde_json::from_value(json!({"name": format!("{name}-{i}")})).unwrap();
                world.sim.state().add_session(ws, new).unwrap()
            })
            .collect()
    };
    let workspaces = vec![
        (world.ws, "main", world.sessions(30)),
        (second, "second", sessions_of(second, "second")),
        (third, "third", sessions_of(third, "third")),
    ];
    let forbidden = workspaces[0].2[0];
    let mut plan = plan::plan(&world, workspaces, n, seed);
    plan.forbidden = Some(forbidden);
    eprintln!("chaos: the project that answers 403 for a while: {forbidden}");

    let extra = format!(
        r#"
default_workspace = "main"
[intake]
linger = "200ms"
[verifier]
max_attempts = 3
[window]
kind = "fixed"
delay = "3s"
[retry]
base = "100ms"
max = "2s"
timeout = "3s"
rate_limited_base = "500ms"
[limits]
scope = "workspace"
delete_per_second = 100
query_per_second = 50
query_wide_per_second = 50
query_v2_per_second = 300
sessions_per_second = 50
[kafka.properties]
# Shorter than the long broker outages, so sessions expire in them and the group must hand the
# partitions out again (Tansu needs scripts/tansu-group-expiry-rebalance.patch for that). Short
# sessions also let a SIGKILLed replica's partitions move on sooner.
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
# Tansu answers a fetch only after half of this, even with data; librdkafka's 500 ms halves the
# verifier's pace there (it pauses and resumes partitions as heads fall due).
"fetch.wait.max.ms" = "100"
[workspaces.second]
api_url = "{url}"
api_key_file = "{key}"
[workspaces.third]
api_url = "http://{third_addr}"
api_key_file = "{third_key}"
"#,
        url = world.sim_url,
        key = second_key_file.display(),
        third_addr = third_proxy.addr,
        third_key = third_key_file.display()
    );
    let replicas = Replicas::start(&world, &extra, &["intake", "intake", "verifier", "verifier"]);
    let chaos = Chaos {
        world: &world,
        replicas: &replicas,
        broker: &broker_proxy,
        api: &api_proxy,
        sim: &sim.sim,
        refused: (second, second_key),
        unreachable: &third_proxy,
        forbidden,
    };
    let mut commits = Commits::new(&world, PARTITIONS);
    let faults_over = AtomicBool::new(false);

    // Input arrives over the first 80% of the fault phase, in 20 slices.
    let publish = async {
        let mut at = Vec::with_capacity(n);
        let slice = n.div_ceil(20).max(1);
        let pause = Duration::from_millis(seconds * 800 / 20);
        for chunk in plan.records.chunks(slice) {
            at.extend(world.publish_records(chunk).await);
            tokio::time::sleep(pause).await;
        }
        at
    };
    let faults = async {
        let counts = chaos.run(seconds, long, seed).await;
        faults_over.store(true, Ordering::Relaxed);
        counts
    };
    let sample = async {
        while !faults_over.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            commits.sample(&plan, &sim.sim);
        }
    };
    let (at, counts, ()) = tokio::join!(publish, faults, sample);
    eprintln!("chaos: faults over after {:.0?}: {counts:?}", began.elapsed());

    // No deadline on the whole (a big run takes as long as the test broker needs): the run fails
    // when no request has finished for `idle`, which is what a stall looks like.
    let idle = Duration::from_secs(knob("CHAOS_IDLE_SECONDS", 180));
    let mut progress = reconcile::Progress::new(&plan);
    let mut last = (usize::MAX, Instant::now());
    let (outs, _) = world
        .collect_until(Duration::from_secs(86_400), |o| {
            let done = progress.done(&plan, o);
            if progress.open() != last.0 {
                last = (progress.open(), Instant::now());
            }
            done || last.1.elapsed() >= idle
        })
        .await;
    commits.sample(&plan, &sim.sim);
    replicas.stop_all();
    let mut outs = outs;
    if progress.open() > 0 {
        // The test's own reader is a Kafka client too, and against Tansu clients have skipped
        // records (see docs/testing.md). Read everything again, with a new reader, before judging.
        let first = outs.len();
        let mut last = 0;
        let (again, _) = world
            .collect_until(Duration::from_secs(600), |o| {
                let quiet = o.len() == last;
                last = o.len();
                quiet && o.len() >= first
            })
            .await;
        let mut reread = reconcile::Progress::new(&plan);
        reread.done(&plan, &again);
        eprintln!(
            "  outputs read again: {} records (first read {first}); requests still open: {} (first read {})",
            again.len(),
            reread.open(),
            progress.open()
        );
        progress = reread;
        outs = again;
    }
    let at = input::positions(&world, &plan, &at).await;
    let mut problems = reconcile::reconcile(&plan, &outs, &sim.sim, &at);
    let read = outs.iter().filter(|o| o.topic == "examples").count();
    problems.extend(examples::check(&plan, &world, &sim.sim, read).await);
    let (samples, late) = commits.check(&plan, &at, &sim.sim);
    problems.extend(late);
    commits.close().await;
    eprintln!(
        "  {samples} samples of committed offsets checked against the delete log; {} replicas started; \
         connections through the proxies: broker {}, API {}; took {:.0?}",
        replicas.started(),
        broker_proxy.accepted(),
        api_proxy.accepted(),
        began.elapsed()
    );
    for p in problems.iter().take(30) {
        eprintln!("  PROBLEM {p}");
    }
    assert!(
        progress.open() == 0,
        "{} requests without their terminal events, and none finished in the last {idle:?}: a stall",
        progress.open()
    );
    assert!(problems.is_empty(), "{} problems (the first 30 above)", problems.len());
}
