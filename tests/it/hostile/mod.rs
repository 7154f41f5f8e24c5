//! Hostile input through the real consumer path: malformed and adversarial records, each followed
//! by a good request, into a worker process. Each hostile record is dead-lettered with its reason
//! or processed correctly; the worker neither crashes nor stalls, and every good request completes.

mod cases;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::simulator;
use crate::world::{data_of, Out, Record, World};
use cases::{cases, explicit, Case, Want, INJECTIONS};

/// Whether `case` (sent under `key`) came out as it must; why not, if not.
fn outcome(case: &Case, key: &str, outs: &[Out]) -> Result<(), String> {
    match &case.want {
        Want::Dead(reason) => {
            let d = outs
                .iter()
                .find(|o| o.topic == "dlq" && o.key.as_deref() == Some(key))
                .ok_or("not dead-lettered")?;
            let got = d.headers.get("dlq_reason").map(String::as_str);
            if got != Some(*reason) {
                return Err(format!("dead-lettered as {got:?}, not {reason}"));
            }
            match d.headers.get("dlq_payload_omitted") {
                None if d.payload != case.record.payload => Err("the DLQ copy differs from the original".into()),
                Some(n) if *n != case.record.payload.len().to_string() => Err(format!("omitted {n} bytes")),
                _ => Ok(()),
            }
        }
        Want::Requested(session, ids) => {
            let request_id = data(&case.record)["request_id"].clone();
            let mut got = BTreeSet::new();
            for d in data_of(outs, "requested")
                .iter()
                .filter(|d| d["request_id"] == request_id)
            {
                if d["session_id"] != json!(session) {
                    return Err(format!("requested in another project: {}", d["session_id"]));
                }
                got.extend(
                    d["trace_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().parse::<Uuid>().unwrap()),
                );
            }
            if got.is_superset(ids) {
                Ok(())
            } else {
                Err(format!(
                    "{} of {} ids requested",
                    got.intersection(ids).count(),
                    ids.len()
                ))
            }
        }
        Want::NothingFound => {
            let request_id = data(&case.record)["request_id"].clone();
            let found = data_of(outs, "verified")
                .into_iter()
                .find(|d| d["request_id"] == request_id)
                .ok_or("no deletion-verified event")?;
            match found["trace_ids"].as_array() {
                Some(a) if a.is_empty() => Ok(()),
                _ => Err(format!("matched traces: {}", found["trace_ids"])),
            }
        }
    }
}

/// The `data` of a structured or binary-mode record.
fn data(r: &Record) -> Value {
    let v: Value = serde_json::from_slice(&r.payload).unwrap_or(Value::Null);
    if r.headers.iter().any(|(k, _)| k == "ce_specversion") {
        v
    } else {
        v["data"].clone()
    }
}

fn all_good_requested(outs: &[Out], good: &BTreeMap<String, BTreeSet<Uuid>>) -> bool {
    let mut got: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    for d in data_of(outs, "requested") {
        let ids = d["trace_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse::<Uuid>().unwrap());
        got.entry(d["request_id"].as_str().unwrap().to_owned())
            .or_default()
            .extend(ids);
    }
    good.iter()
        .all(|(r, ids)| got.get(r).is_some_and(|g| g.is_superset(ids)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_dead_lettered_or_processed_and_good_ones_complete() {
    let world = World::new(simulator(), 2).await;
    let session = world.sessions(1)[0];
    // Someone else's traces: no injection may reach them.
    let gen = json!({"session_id": session, "traces": 5, "return_ids": true,
                     "metadata": [{"key": "user_id", "prefix": "bystander-"}]});
    let bystanders: BTreeSet<Uuid> = world
        .sim
        .state()
        .generate(world.ws, serde_json::from_value(gen).unwrap())
        .unwrap()
        .1
        .into_iter()
        .collect();
    let cases = cases(session);
    let mut records = Vec::new();
    let mut good = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let mut r = case.record.clone();
        r.key = Some(format!("h-{i}"));
        records.push(r);
        let (d, ids) = explicit(&format!("good-{i}"), session, 2);
        good.insert(format!("good-{i}"), ids);
        records.push(Record::event(&d));
    }
    world.publish_records(&records).await;
    let mut worker = world.spawn_worker("[intake]\nlinger = \"200ms\"\n", "hostile", "intake");
    let (outs, finished) = world
        .collect_until(Duration::from_secs(120), |o| {
            all_good_requested(o, &good)
                && cases
                    .iter()
                    .enumerate()
                    .all(|(i, c)| outcome(c, &format!("h-{i}"), o).is_ok())
        })
        .await;
    let running = worker.try_wait().unwrap().is_none();
    worker.terminate();

    let mut problems = Vec::new();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        match outcome(case, &format!("h-{i}"), &outs) {
            Ok(()) => match case.want {
                Want::Dead(r) => *reasons.entry(r).or_default() += 1,
                _ => *reasons.entry("processed").or_default() += 1,
            },
            Err(e) => problems.push(format!("{} (h-{i}): {e}", case.what)),
        }
    }
    let sent: BTreeSet<Uuid> = world
        .sim
        .delete_calls(world.ws)
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    let hit = sent.intersection(&bystanders).count();
    let log = std::fs::read_to_string(world.log_path("hostile")).unwrap();
    let echoed: Vec<&str> = INJECTIONS
        .iter()
        .copied()
        .filter(|inj| outs.iter().any(|o| o.headers.values().any(|v| v.contains(inj))) || log.contains(inj))
        .collect();
    eprintln!(
        "hostile input: {} hostile records ({reasons:?}), {} good requests interleaved, all good requested: {}",
        cases.len(),
        good.len(),
        all_good_requested(&outs, &good)
    );
    assert!(running, "the worker crashed on hostile input; its log:\n{log}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        finished && all_good_requested(&outs, &good),
        "good requests stalled behind hostile ones"
    );
    assert_eq!(hit, 0, "an injected filter reached someone else's traces");
    assert!(
        echoed.is_empty(),
        "injection strings echoed in headers or logs: {echoed:?}"
    );
}
