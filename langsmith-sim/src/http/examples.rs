//! Dataset examples: `GET /examples` (metadata search, OR semantics) and the platform hard delete.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::caller;
use super::error::{ApiError, Flavour};
use super::{json_body, render, Params, SimState};
use crate::model::{now_micros, parse_time, Example};

fn metadata_hit(e: &Example, wanted: &Map<String, Value>) -> bool {
    let Some(meta) = &e.metadata else {
        return false;
    };
    wanted.iter().any(|(k, v)| meta.get(k) == Some(v))
}

pub async fn list(State(sim): SimState, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let offset = p.int("offset", 0, 0..=usize::MAX)?;
    let limit = p.int("limit", 100, 1..=100)?;
    let ids = p.uuids("id")?;
    let dataset = p.uuid("dataset")?;
    let invalid = |field: &str, msg: &str| ApiError::invalid(Flavour::V1, &["query", field], msg);
    let metadata: Option<Map<String, Value>> = match p.get("metadata") {
        None => None,
        Some(m) => Some(serde_json::from_str(m).map_err(|_| invalid("metadata", "metadata must be a JSON object"))?),
    };
    let as_of = match p.get("as_of") {
        None | Some("latest") => None,
        Some(t) => Some(parse_time(t).ok_or_else(|| invalid("as_of", "as_of must be a timestamp or 'latest'"))?),
    };
    let state = sim.state();
    let who = caller(&state, &headers, Flavour::V1)?;
    let ws = &state.workspaces[&who.workspace];
    let found = ws
        .examples
        .iter()
        .filter(|e| dataset.is_none_or(|d| e.dataset_id == d))
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .filter(|e| metadata.as_ref().is_none_or(|m| metadata_hit(e, m)))
        .filter(|e| as_of.is_none_or(|t| e.created_at <= t))
        .skip(offset)
        .take(limit);
    Ok(Json(found.map(render::example).collect()))
}

#[derive(Deserialize)]
struct HardDelete {
    example_ids: Vec<String>,
    hard_delete: bool,
}

/// `POST /v1/platform/datasets/examples/delete`: nulls inputs, outputs and metadata of every version.
pub async fn hard_delete(State(sim): SimState, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let flavour = Flavour::Platform;
    let body: HardDelete = json_body(&body, flavour)?;
    let bad = |msg: &str| ApiError::Message(flavour, StatusCode::BAD_REQUEST, msg.to_owned());
    if !body.hard_delete {
        return Err(bad("only hard_delete=true is supported"));
    }
    if body.example_ids.is_empty() || body.example_ids.len() > 1000 {
        return Err(bad("example_ids must hold 1 to 1000 ids"));
    }
    let ids: Vec<Uuid> = body
        .example_ids
        .iter()
        .map(|s| Uuid::parse_str(s))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("example_ids must be UUIDs"))?;
    let mut state = sim.state();
    let who = caller(&state, &headers, flavour)?;
    let ws = state
        .workspaces
        .get_mut(&who.workspace)
        .ok_or_else(|| ApiError::not_found(flavour, "workspace"))?;
    let now = now_micros();
    let mut deleted = Vec::new();
    for e in ws.examples.iter_mut().filter(|e| ids.contains(&e.id)) {
        e.inputs = None;
        e.outputs = None;
        e.metadata = None;
        e.modified_at = now;
        deleted.push(e.id);
    }
    if deleted.is_empty() {
        return Err(ApiError::not_found(flavour, "examples"));
    }
    Ok(Json(json!({"count": deleted.len(), "example_ids": deleted})))
}
