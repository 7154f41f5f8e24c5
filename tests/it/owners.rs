//! A trace id named with the wrong project. LangSmith accepts such a delete (202) and leaves the
//! trace; a v2 check, which sees one project, would then report it gone. The intake asks where the
//! ids are first, so both check modes agree: the misplaced id fails as `wrong_session` and stays,
//! the others are deleted and verified.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use langsmith_sim::window::Schedule;
use serde_json::json;
use uuid::Uuid;

use crate::support::private_simulator;
use crate::verify::all_terminal;
use crate::world::{data_of, World};

fn ids_of(outs: &[crate::world::Out], topic: &str, reason: Option<&str>) -> BTreeSet<Uuid> {
    data_of(outs, topic)
        .iter()
        .filter(|d| reason.is_none_or(|r| d["reason"] == r))
        .flat_map(|d| d["trace_ids"].as_array().unwrap().clone())
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect()
}

async fn wrong_project_with(mode: &str) {
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let [named, other] = world.sessions(2)[..] else {
        unreachable!()
    };
    let right = world.traces(named, 3);
    let wrong = world.traces(other, 1)[0];
    let nowhere = Uuid::new_v4();
    let mut ids = right.clone();
    ids.extend([wrong, nowhere]);
    let config = world.config(&format!(
        "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n[verifier]\nquery_api = \"{mode}\"\n"
    ));
    let (stop_intake, intake) = world.start(config.clone());
    let (stop_verifier, verifier) = world.start_verifier(config);
    world
        .publish(json!({"request_id": "r-1", "targets": [{"session_id": named, "trace_ids": ids}]}))
        .await;
    let want = BTreeMap::from([("r-1".to_owned(), ids.iter().copied().collect::<BTreeSet<Uuid>>())]);
    let outs = world.collect(Duration::from_secs(60), |o| all_terminal(o, &want)).await;
    stop_intake.send(()).unwrap();
    stop_verifier.send(()).unwrap();
    intake.await.unwrap().unwrap();
    verifier.await.unwrap().unwrap();

    assert_eq!(
        ids_of(&outs, "failed", None),
        BTreeSet::from([wrong]),
        "{mode}: only the misplaced id fails"
    );
    assert_eq!(
        ids_of(&outs, "failed", Some("wrong_session")),
        BTreeSet::from([wrong]),
        "{mode}"
    );
    let mut gone: BTreeSet<Uuid> = right.iter().copied().collect();
    gone.insert(nowhere);
    assert_eq!(
        ids_of(&outs, "verified", None),
        gone,
        "{mode}: the rest is deleted and verified"
    );
    let sent: BTreeSet<Uuid> = sim
        .sim
        .delete_calls(world.ws)
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    assert!(
        !sent.contains(&wrong),
        "{mode}: the misplaced id never reaches the delete API"
    );
    let state = sim.sim.state();
    assert!(
        state.workspaces[&world.ws].traces.contains_key(&wrong),
        "{mode}: it is still there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_named_with_the_wrong_project_fails_alike_with_v2_checks() {
    wrong_project_with("v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_named_with_the_wrong_project_fails_alike_with_v1_checks() {
    wrong_project_with("v1").await;
}
