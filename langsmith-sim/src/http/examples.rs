//! Dataset examples: `GET /examples` (by id, metadata with OR semantics, `filter`, as of a time),
//! the soft delete (`DELETE /examples`: a tombstone in the latest version, history kept) and the
//! platform hard delete (inputs, outputs and metadata nulled in every version).

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
use crate::filter::{self, matches_example};
use crate::model::{now_micros, parse_time, ExampleVersion};

fn metadata_hit(v: &ExampleVersion, wanted: &Map<String, Value>) -> bool {
    let Some(meta) = &v.metadata else {
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
    let expr = match p.get("filter").map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => {
            let bad = |e: String| ApiError::Message(Flavour::V1, StatusCode::BAD_REQUEST, e);
            let expr = filter::parse(f).map_err(|e| bad(e.to_string()))?;
            filter::example_filter_supported(&expr).map_err(bad)?;
            Some(expr)
        }
    };
    let select: Vec<&str> = p.all("select").collect();
    if let Some(bad) = select.iter().find(|f| !SELECTABLE.contains(f)) {
        return Err(invalid(
            "select",
            &format!("Input should be one of {SELECTABLE:?}, not {bad:?}"),
        ));
    }
    let state = sim.state();
    let who = caller(&state, &headers, Flavour::V1)?;
    let ws = &state.workspaces[&who.workspace];
    let found = (ws.examples.iter())
        .filter(|e| dataset.is_none_or(|d| e.dataset_id == d))
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .filter_map(|e| e.as_of(as_of).map(|v| (e, v)))
        .filter(|(_, v)| metadata.as_ref().is_none_or(|m| metadata_hit(v, m)))
        .filter(|(e, v)| expr.as_ref().is_none_or(|x| matches_example(x, e, v.metadata.as_ref())))
        .skip(offset)
        .take(limit);
    Ok(Json(
        found.map(|(e, v)| selected(render::example(e, v), &select)).collect(),
    ))
}

/// `ExampleSelect` in LangSmith's spec: the fields `select` may name.
const SELECTABLE: [&str; 13] = [
    "id",
    "created_at",
    "modified_at",
    "name",
    "dataset_id",
    "source_run_id",
    "source_session_id",
    "source_run_start_time",
    "source_trace_id",
    "metadata",
    "inputs",
    "outputs",
    "attachment_urls",
];

/// `Example`'s required fields in the spec: answered whatever `select` names.
const REQUIRED: [&str; 4] = ["id", "dataset_id", "name", "inputs"];

/// The fields of `example` that `select` names (all when it names none), and the required ones.
fn selected(example: Value, select: &[&str]) -> Value {
    match example {
        Value::Object(fields) if !select.is_empty() => fields
            .into_iter()
            .filter(|(k, _)| REQUIRED.contains(&k.as_str()) || select.contains(&k.as_str()))
            .collect(),
        other => other,
    }
}

/// `DELETE /examples?example_ids=…`: soft delete. The latest version of each example named becomes
/// a tombstone; earlier versions keep their data (which is why erasure needs the hard delete).
pub async fn soft_delete(
    State(sim): SimState,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let ids = p.uuids("example_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            Flavour::V1,
            &["query", "example_ids"],
            "Field required",
        ));
    }
    let mut state = sim.state();
    let who = caller(&state, &headers, Flavour::V1)?;
    let ws = state
        .workspaces
        .get_mut(&who.workspace)
        .ok_or_else(|| ApiError::not_found(Flavour::V1, "workspace"))?;
    let at = now_micros();
    for e in ws.examples.iter_mut().filter(|e| ids.contains(&e.id)) {
        let tombstone = ExampleVersion {
            at,
            inputs: None,
            outputs: None,
            metadata: None,
            deleted: true,
        };
        e.versions.push(tombstone);
    }
    Ok(Json(json!({})))
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
    if ids.iter().any(|id| sim.behaviour().poisoned_examples.contains(id)) {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        return Err(ApiError::Message(flavour, status, "Internal Server Error".into()));
    }
    let mut state = sim.state();
    let who = caller(&state, &headers, flavour)?;
    let ws = state
        .workspaces
        .get_mut(&who.workspace)
        .ok_or_else(|| ApiError::not_found(flavour, "workspace"))?;
    let mut deleted = Vec::new();
    for e in ws.examples.iter_mut().filter(|e| ids.contains(&e.id)) {
        for v in &mut e.versions {
            (v.inputs, v.outputs, v.metadata) = (None, None, None);
        }
        deleted.push(e.id);
    }
    if deleted.is_empty() {
        return Err(ApiError::not_found(flavour, "examples"));
    }
    Ok(Json(json!({"count": deleted.len(), "example_ids": deleted})))
}
