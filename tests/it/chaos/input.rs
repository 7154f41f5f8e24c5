//! Where each request really sits in the input topic. The producer's delivery reports are not
//! enough when produces are retried across broker cuts: in the 200,000 run of 2026-11-24 one
//! report said offset -1, and early requests were reported at offsets that, by how the keys
//! spread over the partitions, must have held earlier requests (c-2100 at partition 0 offset 0),
//! while the DLQ positions the workers logged for those offsets never changed. So the topic is read
//! back and each request is placed where the broker holds it, at its first copy.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::message::Message;

use super::plan::Plan;
use crate::support::{drop_consumer, reader_from_start};
use crate::world::World;

/// For each request of the plan: its first (partition, offset) in the input topic, or the
/// delivery report's when the topic does not hold it. Prints how far the reports were off.
pub async fn positions(world: &World, plan: &Plan, delivered: &[(i32, i64)]) -> Vec<(i32, i64)> {
    let copies = read_back(world, delivered).await;
    let mut copies_of: Vec<Vec<(i32, i64)>> = vec![Vec::new(); plan.requests.len()];
    let mut strangers = 0;
    for (key, at) in &copies {
        match key.strip_prefix("c-").and_then(|n| n.parse::<usize>().ok()) {
            Some(i) if i < copies_of.len() => copies_of[i].push(*at),
            _ => strangers += 1,
        }
    }
    let (mut missing, mut repeated, mut unknown, mut wrong) = (0, 0, 0, 0);
    let at = copies_of
        .iter()
        .zip(delivered)
        .map(|(c, d)| {
            missing += usize::from(c.is_empty());
            repeated += usize::from(c.len() > 1);
            unknown += usize::from(d.1 < 0);
            wrong += usize::from(d.1 >= 0 && !c.is_empty() && !c.contains(d));
            c.iter().min().copied().unwrap_or(*d)
        })
        .collect();
    eprintln!(
        "  input read back: {} records ({strangers} not of the plan); requests missing {missing}, \
         held more than once {repeated}; delivery reports unknown (-1) {unknown}, elsewhere {wrong}",
        copies.len()
    );
    at
}

/// Every record of the requests topic, as (key, (partition, offset)): read until every partition
/// reached its last delivered offset and nothing more came for 5 s (or nothing came for 2 min). (Not up to the high
/// watermarks: unpatched Tansu answered them short, see `scripts/tansu-list-offsets-latest.patch`.)
async fn read_back(world: &World, delivered: &[(i32, i64)]) -> Vec<(String, (i32, i64))> {
    let topic = world.topic("requests");
    let consumer = reader_from_start(&world.bootstrap, &[&topic], world.partitions);
    let mut last: BTreeMap<i32, i64> = (0..world.partitions).map(|p| (p, -1)).collect();
    for (p, o) in delivered {
        last.entry(*p).and_modify(|l| *l = (*l).max(*o));
    }
    let mut seen = HashSet::new();
    let mut got = Vec::new();
    let mut reached: BTreeMap<i32, i64> = last.keys().map(|p| (*p, -1)).collect();
    loop {
        let all_reached = reached.iter().all(|(p, r)| *r >= last[p]);
        let lull = Duration::from_secs(if all_reached { 5 } else { 120 });
        let m = match tokio::time::timeout(lull, consumer.recv()).await {
            Ok(m) => m.expect("reading the input"),
            Err(_) => {
                if !all_reached {
                    // A report past the end is one more wrong report; the counts show the rest.
                    eprintln!("  input read back: nothing for {lull:?} at {reached:?}, short of the reports' {last:?}");
                }
                break;
            }
        };
        let at = (m.partition(), m.offset());
        if seen.insert(at) {
            let r = reached.get_mut(&at.0).expect("an input partition");
            *r = (*r).max(at.1);
            let key = m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            got.push((key, at));
        }
    }
    drop_consumer(consumer).await;
    got
}
