//! The dataset examples of the plan (of selectors' subjects, and made from explicit requests'
//! traces): each must end nulled in every version in the
//! simulator, none may fail, and an erased event must name each. One whose first run hard-deleted
//! it but died before Kafka acknowledged the event is named by the replay, from the resolution
//! journal (its search finds nothing, the metadata being gone).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use langsmith_sim::Sim;
use uuid::Uuid;

use super::plan::Plan;
use crate::world::World;

/// Reads the examples topic to its end (the suite's reader stops once every request has its
/// trace events, and examples events may still be unread then: `read` of them were read), and
/// checks the plan's examples. The replicas are stopped: the end is when nothing came for 3 s.
pub async fn check(plan: &Plan, world: &World, sim: &Sim, read: usize) -> Vec<String> {
    let (mut last, mut since) = (0, Instant::now());
    let quiet = |o: &[crate::world::Out]| {
        if o.len() != last {
            (last, since) = (o.len(), Instant::now());
        }
        o.len() >= read && since.elapsed() >= Duration::from_secs(3)
    };
    let (outs, _) = world.collect_from(&["examples"], Duration::from_secs(300), quiet).await;
    let mut named: HashSet<(String, Uuid)> = HashSet::new();
    let mut problems = Vec::new();
    for o in &outs {
        let v = o.json();
        let d = &v["data"];
        let request = d["request_id"].as_str().unwrap_or_default().to_owned();
        if v["type"] != "erasure.examples.erased.v1" {
            problems.push(format!("{request}: examples failed: {d}"));
            continue;
        }
        let ids = d["example_ids"].as_array().into_iter().flatten();
        named.extend(ids.filter_map(|id| Some((request.clone(), id.as_str()?.parse().ok()?))));
    }
    let state = sim.state();
    let (mut planned, mut unnamed) = (0, 0);
    for r in &plan.requests {
        let examples = &state.workspaces[&plan.workspaces[r.ws].0].examples;
        for id in &r.examples {
            planned += 1;
            if !named.contains(&(r.id.clone(), *id)) {
                unnamed += 1;
                problems.push(format!("{}: dataset example {id} is named by no erased event", r.id));
            }
            let Some(e) = examples.iter().find(|e| e.id == *id) else {
                problems.push(format!("{}: dataset example {id} is gone from the simulator", r.id));
                continue;
            };
            let held = e
                .versions
                .iter()
                .any(|v| v.inputs.is_some() || v.outputs.is_some() || v.metadata.is_some());
            if held {
                problems.push(format!("{}: dataset example {id} still holds data", r.id));
            }
        }
    }
    eprintln!(
        "  dataset examples: {planned} (selectors' subjects, made from explicit requests' traces), all checked nulled in the simulator; \
         {unnamed} named by no erased event"
    );
    problems
}
