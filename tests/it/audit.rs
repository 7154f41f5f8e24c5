//! Audit-log correlation: with a workspace's `organization_id`, every `deletion-requested` event
//! carries the ids of LangSmith's `delete_runs` audit records of the calls that deleted its traces;
//! with the audit log failing or refused, requests still complete, without them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::schemas::validator;
use crate::support::private_simulator;
use crate::verify::requests;
use crate::world::{data_of, Out, World};

/// Runs the intake over 20 requests with `organization_id = org` (the simulator's own when
/// `None`); returns the `deletion-requested` events once every request has its events.
async fn requested_with(world: &World, org: Option<Uuid>, extra: &str) -> Vec<Value> {
    let org = org.unwrap_or_else(|| world.sim.state().workspaces[&world.ws].org_id);
    let (data, want) = requests(world, 20, 3);
    let config = format!(
        "{extra}\n[intake]\nlinger = \"200ms\"\naudit_wait = \"2s\"\n[workspaces.main]\norganization_id = \"{org}\"\n"
    );
    let (stop, intake) = world.start(world.config(&config));
    world.publish_many(&data).await;
    let all_named = |o: &[Out]| {
        let named: BTreeSet<Uuid> = data_of(o, "requested").iter().flat_map(ids).collect();
        want.values().flatten().all(|id| named.contains(id))
    };
    let outs = world.collect(Duration::from_secs(60), all_named).await;
    stop.send(()).unwrap();
    intake.await.unwrap().unwrap();
    data_of(&outs, "requested")
}

fn ids(d: &Value) -> Vec<Uuid> {
    serde_json::from_value(d["trace_ids"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deletion_requested_event_carries_the_audit_records_of_its_deletes() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let events = requested_with(&world, None, "").await;
    let audit: HashMap<Uuid, BTreeSet<Uuid>> = {
        let state = world.sim.state();
        let entries = &state.workspaces[&world.ws].audit;
        let named = |e: &langsmith_sim::model::AuditEntry| e.resource_ids.iter().copied().collect();
        entries.iter().map(|e| (e.id, named(e))).collect()
    };
    let schema = validator("erasure.deletion.requested.v1");
    for d in &events {
        assert!(schema.is_valid(d), "{d}");
        let records: Vec<Uuid> = serde_json::from_value(d["audit_log_ids"].clone()).expect("audit_log_ids");
        let covered: BTreeSet<Uuid> = records.iter().flat_map(|r| audit[r].iter().copied()).collect();
        assert!(
            ids(d).iter().all(|id| covered.contains(id)),
            "each trace id is named by one of the event's audit records: {d}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_complete_without_audit_records_when_the_audit_log_fails_or_refuses() {
    let sim = private_simulator();
    let world = World::new(&sim, 1).await;
    let failing = json!({"error_ratio": 1.0, "error_status": 500});
    sim.sim.faults().set(
        serde_json::from_value(json!("audit")).unwrap(),
        serde_json::from_value(failing).unwrap(),
    );
    let retry = "[retry]\nbase = \"50ms\"\nmax = \"200ms\"";
    let failed = requested_with(&world, None, retry).await;
    sim.sim.clear_faults();
    // An organization the key does not reach: LangSmith answers 403.
    let refused = requested_with(&world, Some(Uuid::new_v4()), "").await;
    for (case, events) in [("failing", failed), ("refused", refused)] {
        assert!(!events.is_empty(), "{case}");
        let with: BTreeMap<String, &Value> = events
            .iter()
            .filter(|d| d.get("audit_log_ids").is_some())
            .map(|d| (d["request_id"].to_string(), d))
            .collect();
        assert!(with.is_empty(), "{case}: no audit records, so none named: {with:?}");
    }
}
