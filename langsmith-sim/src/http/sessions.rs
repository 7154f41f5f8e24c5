//! Tracing projects: `GET /sessions` (offset pagination, name filters) and `GET /sessions/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use uuid::Uuid;

use super::auth::caller;
use super::error::{ApiError, Flavour};
use super::{render, Params, SimState};
use crate::model::Workspace;

fn run_count(ws: &Workspace, session: Uuid) -> usize {
    ws.runs.values().filter(|r| r.session_id == session).count()
}

pub async fn list(State(sim): SimState, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let offset = p.int("offset", 0, 0..=usize::MAX)?;
    let limit = p.int("limit", 100, 1..=100)?;
    let ids = p.uuids("id")?;
    let stats = p.flag("include_stats");
    let ascending = p.get("sort_by_desc").is_some_and(|v| v == "false");
    let state = sim.state();
    let who = caller(&state, &headers, Flavour::V1)?;
    let ws = &state.workspaces[&who.workspace];
    let mut found: Vec<_> = ws
        .sessions
        .iter()
        .filter(|s| p.get("name").is_none_or(|n| s.name == n))
        .filter(|s| p.get("name_contains").is_none_or(|n| s.name.contains(n)))
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .collect();
    found.sort_by_key(|s| (s.start_time, s.id));
    if !ascending {
        found.reverse();
    }
    let page = found.into_iter().skip(offset).take(limit);
    Ok(Json(
        page.map(|s| render::session(s, ws.id, stats.then(|| run_count(ws, s.id))))
            .collect(),
    ))
}

pub async fn read(
    State(sim): SimState,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let stats = Params::parse(raw).flag("include_stats");
    let state = sim.state();
    let who = caller(&state, &headers, Flavour::V1)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid(Flavour::V1, &["path", "session_id"], "Input should be a valid UUID"))?;
    let ws = &state.workspaces[&who.workspace];
    let s = ws
        .session(id)
        .ok_or_else(|| ApiError::not_found(Flavour::V1, "Session"))?;
    Ok(Json(render::session(s, ws.id, stats.then(|| run_count(ws, id)))))
}
