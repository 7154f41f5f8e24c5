//! v2 ("SmithDB") queries: `POST /v2/runs/query` and `POST /v2/traces/query`.
//! Served under `/api/v2` and `/v2` (each can be switched off). `min_start_time` (inclusive)
//! defaults to 24 hours ago, as LangSmith's does: older traces are not found unless the caller
//! widens it; `max_start_time` is exclusive and defaults to now.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::{caller, may_touch};
use super::error::{ApiError, Flavour};
use super::runs::parse_filter;
use super::{json_body, render, SimState};
use crate::model::{now_micros, parse_time, Micros};
use crate::query::{decode_cursor, page, RunQuery};

const DAY_MICROS: i64 = 86_400 * 1_000_000;
const V2: Flavour = Flavour::V2;

#[derive(Deserialize)]
struct RunsBody {
    project_ids: Option<Vec<Uuid>>,
    ids: Option<Vec<Uuid>>,
    trace_id: Option<Uuid>,
    is_root: Option<bool>,
    has_error: Option<bool>,
    run_type: Option<String>,
    filter: Option<String>,
    trace_filter: Option<String>,
    tree_filter: Option<String>,
    min_start_time: Option<String>,
    max_start_time: Option<String>,
    #[serde(default)]
    selects: Vec<String>,
    page_size: Option<i64>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct TracesBody {
    project_id: Option<Uuid>,
    trace_ids: Option<Vec<Uuid>>,
    trace_filter: Option<String>,
    tree_filter: Option<String>,
    min_start_time: Option<String>,
    max_start_time: Option<String>,
    #[serde(default)]
    selects: Vec<String>,
    page_size: Option<i64>,
    cursor: Option<String>,
}

fn window(min: Option<&str>, max: Option<&str>) -> Result<(Micros, Micros), ApiError> {
    let now = now_micros();
    let parse = |field: &str, v: &str| {
        parse_time(v)
            .ok_or_else(|| ApiError::invalid(V2, &["body", field], format!("{field} is not a valid date-time")))
    };
    let min = min
        .map(|v| parse("min_start_time", v))
        .transpose()?
        .unwrap_or(now - DAY_MICROS);
    let max = max.map(|v| parse("max_start_time", v)).transpose()?.unwrap_or(now);
    // Inclusive bounds for `RunQuery`: the spec's `max_start_time` is exclusive.
    Ok((min, max - 1))
}

fn page_size(v: Option<i64>, default: usize, max: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(_) => Err(ApiError::invalid(
            V2,
            &["body", "page_size"],
            format!("page_size must be between 1 and {max}"),
        )),
    }
}

fn offset(cursor: Option<&str>) -> Result<usize, ApiError> {
    cursor.map_or(Ok(0), |c| {
        decode_cursor(c).ok_or_else(|| ApiError::invalid(V2, &["body", "cursor"], "invalid cursor"))
    })
}

fn check_selects(selects: &[String]) -> Result<(), ApiError> {
    match selects.iter().find(|s| !render::V2_SELECT.contains(&s.as_str())) {
        Some(bad) => Err(ApiError::invalid(
            V2,
            &["body", "selects"],
            format!("unknown select {bad:?}"),
        )),
        None => Ok(()),
    }
}

pub async fn runs(State(sim): SimState, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: RunsBody = json_body(&body, V2)?;
    let projects = body
        .project_ids
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid(V2, &["body", "project_ids"], "project_ids is required"))?;
    check_selects(&body.selects)?;
    let size = page_size(body.page_size, 100, 1000)?;
    let offset = offset(body.cursor.as_deref())?;
    let (min, max) = window(body.min_start_time.as_deref(), body.max_start_time.as_deref())?;
    let q = RunQuery {
        ids: body.ids.filter(|i| !i.is_empty()),
        ids_narrow: true,
        trace: body.trace_id,
        sessions: Some(projects),
        is_root: body.is_root,
        run_type: body.run_type,
        error: body.has_error,
        min_start: Some(min),
        max_start: Some(max),
        filter: parse_filter(body.filter.as_deref(), V2)?,
        trace_filter: parse_filter(body.trace_filter.as_deref(), V2)?,
        tree_filter: parse_filter(body.tree_filter.as_deref(), V2)?,
        ..Default::default()
    };
    let forbidden = sim.behaviour().forbidden_projects.clone();
    let mut state = sim.state();
    let who = caller(&state, &headers, V2)?;
    may_touch(&forbidden, q.sessions.as_deref().unwrap_or_default(), V2)?;
    let ws = (state.workspaces.get_mut(&who.workspace)).ok_or_else(|| ApiError::not_found(V2, "Workspace"))?;
    // Later pages of the same query cost a page, not a scan (as v1's do).
    let matched = q.matched(ws);
    let (ids, next) = page(&matched.ids, offset, size);
    let items: Vec<Value> = (ids.iter().filter_map(|id| ws.runs.get(id)))
        .map(|r| render::v2_run(r, &body.selects))
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

pub async fn traces(State(sim): SimState, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: TracesBody = json_body(&body, V2)?;
    let project = body
        .project_id
        .ok_or_else(|| ApiError::invalid(V2, &["body", "project_id"], "project_id is required"))?;
    check_selects(&body.selects)?;
    let size = page_size(body.page_size, 20, 100)?;
    let offset = offset(body.cursor.as_deref())?;
    let (min, max) = window(body.min_start_time.as_deref(), body.max_start_time.as_deref())?;
    let q = RunQuery {
        ids: body.trace_ids.filter(|i| !i.is_empty()),
        ids_narrow: true,
        sessions: Some(vec![project]),
        is_root: Some(true),
        min_start: Some(min),
        max_start: Some(max),
        trace_filter: parse_filter(body.trace_filter.as_deref(), V2)?,
        tree_filter: parse_filter(body.tree_filter.as_deref(), V2)?,
        ..Default::default()
    };
    let forbidden = sim.behaviour().forbidden_projects.clone();
    let state = sim.state();
    let who = caller(&state, &headers, V2)?;
    may_touch(&forbidden, &[project], V2)?;
    let all = q.run(&state.workspaces[&who.workspace]);
    let (items, next) = page(&all, offset, size);
    let items: Vec<Value> = items
        .iter()
        .map(|r| json!({"root_run": render::v2_run(r, &body.selects)}))
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next})))
}
