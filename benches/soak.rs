//! Soak benchmark (a program that prints figures, not a timed test): the worker runs both roles for
//! ten minutes while requests arrive at a steady rate, with a fixed 10 s window and the simulator's
//! deletion job every second. Prints the worker's RSS every minute, and whether it grew between the
//! second minute and the end. Every request must be verified at the end.
//!
//! Run: `cargo bench --bench soak` (optional: `-- SECONDS`, default 600; 10 as a smoke run under
//! `cargo test`). BENCH_RATE sets events per second (default 100). Needs Tansu.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{drop_consumer, status_kib, Broker, SimWorld};
use langsmith_sim::window::Schedule;
use rdkafka::Message;
use uuid::Uuid;

fn main() {
    let seconds = common::size(600, 10) as u64;
    common::runtime().block_on(bench(seconds));
}

async fn bench(seconds: u64) {
    let rate: u64 = std::env::var("BENCH_RATE").map_or(100, |r| r.parse().expect("BENCH_RATE: events per second"));
    let broker = Broker::start(None);
    let sim = SimWorld::start(50, false);
    sim.sim.set_schedule(Schedule::Every { seconds: 1.0 });
    let topics = common::topics(&broker.bootstrap).await;
    let producer = common::producer(&broker.bootstrap);
    let reader = common::reader(&broker.bootstrap, &[&topics[4]]);
    // No rate limits in the simulator; the worker's query limit well above the input rate.
    let extra =
        "[window]\nkind = \"fixed\"\ndelay = \"10s\"\n[limits]\nscope = \"replica\"\nquery_v2_per_second = 1000\n";
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "all", extra);
    let events = (rate * seconds) as usize;
    let start = Instant::now();
    let produce = async {
        let mut pending = Vec::new();
        for i in 0..events {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let ids: Vec<Uuid> = (0..1 + i % 3).map(|_| Uuid::new_v4()).collect();
            pending.push(common::send(&producer, &topics[0], i, sim.sessions[i % sim.sessions.len()], &ids).await);
            if pending.len() >= 1000 {
                for d in pending.drain(..) {
                    d.await.unwrap().unwrap();
                }
            }
        }
        for d in pending {
            d.await.unwrap().unwrap();
        }
    };
    let watch = async {
        let mut verified = HashSet::with_capacity(events);
        let mut samples: Vec<(u64, u64)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        // Generous: Tansu's in-memory log slows as it grows (its CPU, not the worker's, was the
        // limit at 200/s), and this measures memory, not speed.
        let deadline = start + Duration::from_secs(seconds + 600);
        while verified.len() < events {
            tokio::select! {
                m = reader.recv() => { verified.insert(m.unwrap().key().map(<[u8]>::to_vec)); }
                _ = tick.tick() => {
                    let secs = start.elapsed().as_secs();
                    let rss = status_kib(worker.id(), "VmRSS:");
                    if secs <= seconds {
                        samples.push((secs, rss));
                    }
                    if secs % 60 < 5 {
                        println!("{secs:>4} s: worker RSS {:.1} MiB, {} of {events} requests verified", rss as f64 / 1024.0, verified.len());
                    }
                    assert!(Instant::now() < deadline, "only {} of {events} verified", verified.len());
                }
            }
        }
        samples
    };
    let ((), samples) = tokio::join!(produce, watch);
    let hwm = status_kib(worker.id(), "VmHWM:");
    worker.terminate();
    drop_consumer(reader).await;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let settled: Vec<u64> = samples
        .iter()
        .filter(|(s, _)| *s >= seconds / 10)
        .map(|(_, r)| *r)
        .collect();
    let (early, late) = settled.split_at(settled.len() / 2);
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    println!(
        "soak: {events} requests at {rate}/s over {seconds} s, all verified; RSS after the first tenth: max {:.1} MiB in the first half, {:.1} MiB in the second half; peak {:.1} MiB (VmHWM)",
        mib(max(early)),
        mib(max(late)),
        mib(hwm)
    );
}
