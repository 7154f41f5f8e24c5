//! The admin API under `/_sim/` (no LangSmith path uses it): tests and benchmarks load data, run the
//! deletion window, set faults and read counters. It takes no key: bind the simulator to loopback.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::SimState;
use crate::faults::{Class, FaultSpec};
use crate::model::DeleteTarget;
use crate::store::{Generate, NewExample, NewRun, NewSession, NewWorkspace};
use crate::window::Schedule;
use crate::{Behaviour, Sim};

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/workspaces", post(create_workspace))
        .route("/workspaces/{id}/load", post(load))
        .route("/workspaces/{id}/generate", post(generate))
        .route("/workspaces/{id}/deletes", get(deletes))
        .route("/window", get(get_window).put(set_window))
        .route("/window/run", post(run_window))
        .route("/faults", get(get_faults).delete(clear_faults))
        .route("/faults/{class}", put(set_fault))
        .route("/never", put(set_never))
        .route("/behaviour", get(get_behaviour).put(set_behaviour))
        .route("/counters", get(get_counters).delete(reset_counters))
        .route("/exchanges", get(get_exchanges).delete(clear_exchanges))
}

type Answer = Result<Json<Value>, AdminError>;

pub struct AdminError(String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({"error": self.0}))).into_response()
    }
}

impl From<String> for AdminError {
    fn from(s: String) -> Self {
        AdminError(s)
    }
}

/// Admin bodies are strict: an unknown field is an error, not a silent no-op.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| AdminError(format!("bad body: {e}")))
}

async fn create_workspace(State(sim): SimState, body: axum::body::Bytes) -> Answer {
    let new: NewWorkspace = parse(&body)?;
    let mut state = sim.state();
    let id = state.create_workspace(new)?;
    Ok(Json(json!({"id": id, "org_id": state.workspaces[&id].org_id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Load {
    #[serde(default)]
    sessions: Vec<NewSession>,
    #[serde(default)]
    runs: Vec<NewRun>,
    #[serde(default)]
    examples: Vec<NewExample>,
}

async fn load(State(sim): SimState, Path(ws): Path<Uuid>, body: axum::body::Bytes) -> Answer {
    let load: Load = parse(&body)?;
    let mut state = sim.state();
    let sessions = load
        .sessions
        .into_iter()
        .map(|s| state.add_session(ws, s))
        .collect::<Result<Vec<_>, _>>()?;
    let runs = load
        .runs
        .into_iter()
        .map(|r| state.add_run(ws, r))
        .collect::<Result<Vec<_>, _>>()?;
    let examples = load
        .examples
        .into_iter()
        .map(|e| state.add_example(ws, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(
        json!({"sessions": sessions, "runs": runs.len(), "examples": examples}),
    ))
}

async fn generate(State(sim): SimState, Path(ws): Path<Uuid>, body: axum::body::Bytes) -> Answer {
    let g: Generate = parse(&body)?;
    let (runs, trace_ids) = sim.state().generate(ws, g)?;
    Ok(Json(json!({"runs": runs, "trace_ids": trace_ids})))
}

async fn deletes(State(sim): SimState, Path(ws): Path<Uuid>) -> Answer {
    let state = sim.state();
    let ws = state
        .workspaces
        .get(&ws)
        .ok_or_else(|| AdminError("no such workspace".into()))?;
    let calls: Vec<Value> = ws
        .delete_log
        .iter()
        .map(|t| match t {
            DeleteTarget::Traces { session_id, trace_ids } => json!({"session_id": session_id, "trace_ids": trace_ids}),
            DeleteTarget::Metadata { pairs, .. } => json!({"metadata_pairs": pairs.len()}),
        })
        .collect();
    Ok(Json(json!(calls)))
}

async fn get_window(State(sim): SimState) -> Json<Value> {
    Json(json!(*sim.schedule.borrow()))
}

async fn set_window(State(sim): SimState, body: axum::body::Bytes) -> Answer {
    let schedule: Schedule = parse(&body)?;
    schedule.validate()?;
    sim.set_schedule(schedule.clone());
    Ok(Json(json!(schedule)))
}

async fn run_window(State(sim): SimState) -> Json<Value> {
    Json(json!(sim.run_window()))
}

async fn get_faults(State(sim): SimState) -> Json<Value> {
    let faults = sim.faults();
    let sorted: std::collections::BTreeMap<_, _> = faults.specs().iter().collect();
    Json(json!(sorted))
}

async fn clear_faults(State(sim): SimState) -> Json<Value> {
    sim.clear_faults();
    Json(json!({"cleared": true}))
}

async fn set_fault(State(sim): SimState, Path(class): Path<String>, body: axum::body::Bytes) -> Answer {
    let class: Class =
        serde_json::from_value(json!(class)).map_err(|_| AdminError(format!("unknown class {class:?}")))?;
    let spec: FaultSpec = parse(&body)?;
    spec.validate()?;
    sim.faults().set(class, spec.clone());
    Ok(Json(json!(spec)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Never {
    #[serde(default)]
    traces: Vec<Uuid>,
    #[serde(default)]
    sessions: Vec<Uuid>,
}

async fn set_never(State(sim): SimState, body: axum::body::Bytes) -> Answer {
    let never: Never = parse(&body)?;
    let mut state = sim.state();
    state.never_traces.extend(never.traces);
    state.never_sessions.extend(never.sessions);
    Ok(Json(
        json!({"traces": state.never_traces.len(), "sessions": state.never_sessions.len()}),
    ))
}

async fn get_behaviour(State(sim): SimState) -> Json<Value> {
    Json(json!(*sim.behaviour()))
}

async fn set_behaviour(State(sim): SimState, body: axum::body::Bytes) -> Answer {
    let b: Behaviour = parse(&body)?;
    *sim.behaviour() = b.clone();
    Ok(Json(json!(b)))
}

async fn get_counters(State(sim): SimState) -> Json<Value> {
    Json(json!(*sim.counters()))
}

async fn reset_counters(State(sim): SimState) -> Json<Value> {
    *sim.counters() = Default::default();
    Json(json!({"reset": true}))
}

async fn get_exchanges(State(sim): SimState) -> Json<Value> {
    Json(json!(*sim.exchanges()))
}

async fn clear_exchanges(State(sim): SimState) -> Json<Value> {
    sim.exchanges().clear();
    Json(json!({"cleared": true}))
}
