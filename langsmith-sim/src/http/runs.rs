//! v1 runs: `POST /runs/delete`, `POST /runs/query`, `GET /runs/{id}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::{caller, may_touch};
use super::error::{ApiError, Flavour};
use super::{json_body, render, SimState};
use crate::faults::{Class, Verdict};
use crate::filter;
use crate::model::{parse_time, AuditEntry, DeleteTarget, Micros};
use crate::query::{decode_cursor, page, RunQuery};

/// Most trace ids one delete call may carry (per session).
pub const MAX_DELETE_IDS: usize = 1000;

#[derive(Deserialize)]
struct DeleteBody {
    session_id: Option<Uuid>,
    trace_ids: Option<Vec<Uuid>>,
    metadata: Option<Map<String, Value>>,
    start_time: Option<String>,
    end_time: Option<String>,
}

fn time(field: &str, value: Option<&str>, flavour: Flavour) -> Result<Option<Micros>, ApiError> {
    value
        .map(|t| {
            parse_time(t)
                .ok_or_else(|| ApiError::invalid(flavour, &["body", field], "Input should be a valid datetime"))
        })
        .transpose()
}

/// What a delete body names: traces of one project, or runs by metadata and time.
fn delete_target(
    body: DeleteBody,
    start: Option<Micros>,
    end: Option<Micros>,
    behaviour: &crate::Behaviour,
    flavour: Flavour,
) -> Result<DeleteTarget, ApiError> {
    Ok(match (body.trace_ids, body.metadata) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                flavour,
                &["body"],
                "Give trace_ids or metadata, not both",
            ))
        }
        (Some(ids), None) => trace_target(ids, body.session_id, behaviour, flavour)?,
        (None, metadata) => {
            if metadata.as_ref().is_none_or(|m| m.is_empty()) && (start.is_none() || end.is_none()) {
                let msg = "Provide session_id and trace_ids, or metadata with start_time, or start_time and end_time";
                return Err(ApiError::invalid(flavour, &["body"], msg));
            }
            if !behaviour.bulk_deletes_enabled {
                return Err(ApiError::v1(StatusCode::FORBIDDEN, "bulk run deletes are not enabled"));
            }
            let pairs = crate::store::metadata_pairs(&metadata.unwrap_or_default());
            let pairs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            DeleteTarget::Metadata { pairs, start, end }
        }
    })
}

/// Traces named by id: at most [`MAX_DELETE_IDS`], of a project the key may touch.
fn trace_target(
    ids: Vec<Uuid>,
    session_id: Option<Uuid>,
    behaviour: &crate::Behaviour,
    flavour: Flavour,
) -> Result<DeleteTarget, ApiError> {
    let session_id = session_id.ok_or_else(|| ApiError::invalid(flavour, &["body", "session_id"], "Field required"))?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            flavour,
            &["body", "trace_ids"],
            "List should have at least 1 item",
        ));
    }
    if ids.len() > MAX_DELETE_IDS {
        let status = StatusCode::from_u16(behaviour.oversize_status).unwrap_or(StatusCode::BAD_REQUEST);
        let msg = format!("Cannot delete more than {MAX_DELETE_IDS} traces per request");
        return Err(ApiError::v1(status, msg));
    }
    may_touch(&behaviour.forbidden_projects, &[session_id], flavour)?;
    if behaviour.gone_projects.contains(&session_id) {
        return Err(ApiError::not_found(flavour, "Session"));
    }
    if ids.iter().any(|id| behaviour.poisoned_traces.contains(id)) {
        return Err(ApiError::v1(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"));
    }
    Ok(DeleteTarget::Traces {
        session_id,
        trace_ids: ids,
    })
}

pub async fn delete(State(sim): SimState, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let flavour = Flavour::V1;
    let body: DeleteBody = json_body(&body, flavour)?;
    let behaviour = sim.behaviour().clone();
    let mut state = sim.state();
    let who = caller(&state, &headers, flavour)?;
    let start = time("start_time", body.start_time.as_deref(), flavour)?;
    let end = time("end_time", body.end_time.as_deref(), flavour)?;
    let target = delete_target(body, start, end, &behaviour, flavour)?;
    let ids = match &target {
        DeleteTarget::Traces { trace_ids, .. } => trace_ids.clone(),
        DeleteTarget::Metadata { .. } => Vec::new(),
    };
    let audit_id = state.rng.uuid();
    let ws = state
        .workspaces
        .get_mut(&who.workspace)
        .ok_or_else(|| ApiError::not_found(flavour, "Workspace"))?;
    ws.audit.push(AuditEntry {
        id: audit_id,
        time: crate::model::now_micros(),
        operation: "delete_runs",
        method: "POST",
        path: "/api/v1/runs/delete".into(),
        status: if behaviour.delete_answers_202 { 202 } else { 200 },
        api_key_id: who.key_id,
        resource_ids: ids.clone(),
    });
    ws.delete_log.push(target.clone());
    ws.queued.push(target);
    drop(state);
    let mut counters = sim.counters();
    counters.accepted_delete(ids.len());
    counters.queued_traces += ids.len() as u64;
    Ok(if behaviour.delete_answers_202 {
        (StatusCode::ACCEPTED, Json(json!({"message": "Run deletes queued"}))).into_response()
    } else {
        (StatusCode::OK, Json(json!({}))).into_response()
    })
}

#[derive(Deserialize)]
struct QueryBody {
    id: Option<Vec<Uuid>>,
    trace: Option<Uuid>,
    parent_run: Option<Uuid>,
    run_type: Option<String>,
    session: Option<Vec<Uuid>>,
    start_time: Option<String>,
    end_time: Option<String>,
    error: Option<bool>,
    filter: Option<String>,
    trace_filter: Option<String>,
    tree_filter: Option<String>,
    is_root: Option<bool>,
    cursor: Option<String>,
    limit: Option<i64>,
    select: Option<Vec<String>>,
    order: Option<String>,
}

/// Parses a filter expression; a bad one answers 400 in the flavour given.
pub fn parse_filter(src: Option<&str>, flavour: Flavour) -> Result<Option<filter::Expr>, ApiError> {
    match src.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => filter::parse(s)
            .map(Some)
            .map_err(|e| ApiError::Message(flavour, StatusCode::BAD_REQUEST, e.to_string())),
    }
}

/// A query's page: its size, the fields asked for, the order, and where the cursor resumes.
struct Paging {
    limit: usize,
    select: Vec<String>,
    ascending: bool,
    offset: usize,
}

fn paging(body: &mut QueryBody, flavour: Flavour) -> Result<Paging, ApiError> {
    let limit = match body.limit {
        None => 100,
        Some(n) if n > 100 => {
            return Err(ApiError::v1(
                StatusCode::BAD_REQUEST,
                "Limit exceeds maximum allowed value of 100",
            ))
        }
        Some(n) if n < 1 => {
            return Err(ApiError::invalid(
                flavour,
                &["body", "limit"],
                "Input should be greater than or equal to 1",
            ))
        }
        Some(n) => n as usize,
    };
    let select = body.select.take().unwrap_or_default();
    if let Some(bad) = select.iter().find(|s| !render::V1_SELECT.contains(&s.as_str())) {
        return Err(ApiError::invalid(
            flavour,
            &["body", "select"],
            format!("Input should be a valid RunSelect, got {bad:?}"),
        ));
    }
    let ascending = match body.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                flavour,
                &["body", "order"],
                "Input should be 'asc' or 'desc'",
            ))
        }
    };
    let offset = match body.cursor.as_deref() {
        None => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| ApiError::v1(StatusCode::BAD_REQUEST, "Invalid cursor"))?,
    };
    Ok(Paging {
        limit,
        select,
        ascending,
        offset,
    })
}

pub async fn query(State(sim): SimState, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let flavour = Flavour::V1;
    let mut body: QueryBody = json_body(&body, flavour)?;
    let Paging {
        limit,
        select,
        ascending,
        offset,
    } = paging(&mut body, flavour)?;
    let start = time("start_time", body.start_time.as_deref(), flavour)?;
    // v1's `end_time` filters on each run's own end, not its start (a run still going never matches).
    let end = time("end_time", body.end_time.as_deref(), flavour)?;
    let workspace = caller(&sim.state(), &headers, flavour)?.workspace;
    if let Some(limited) = tier_limited(&sim, start, end, workspace) {
        return Err(limited);
    }
    let q = RunQuery {
        ids: body.id.filter(|ids| !ids.is_empty()),
        trace: body.trace,
        sessions: body.session,
        is_root: body.is_root,
        run_type: body.run_type,
        parent_run: body.parent_run,
        error: body.error,
        min_start: start,
        max_end: end,
        filter: parse_filter(body.filter.as_deref(), flavour)?,
        trace_filter: parse_filter(body.trace_filter.as_deref(), flavour)?,
        tree_filter: parse_filter(body.tree_filter.as_deref(), flavour)?,
        ascending,
        ..Default::default()
    };
    let forbidden = sim.behaviour().forbidden_projects.clone();
    let mut state = sim.state();
    let ws = state
        .workspaces
        .get_mut(&workspace)
        .ok_or_else(|| ApiError::not_found(flavour, "Workspace"))?;
    may_touch(&forbidden, q.sessions.as_deref().unwrap_or_default(), flavour)?;
    let matched = q.matched(ws);
    may_touch(&forbidden, &matched.sessions, flavour)?;
    // A whole trace comes back in one response: no limit, no cursor.
    let (ids, next) = if q.trace.is_some() && q.ids.is_none() {
        (matched.ids.clone(), None)
    } else {
        page(&matched.ids, offset, limit)
    };
    let runs: Vec<Value> = (ids.iter().filter_map(|id| ws.runs.get(id)))
        .map(|r| render::v1_run(r, ws.org_id, &select))
        .collect();
    Ok(Json(json!({"runs": runs, "cursors": {"next": next, "prev": null}})))
}

/// LangSmith's per-workspace v1 query tiers by shape: a range (`end_time` or now, minus
/// `start_time`) of at most 7 days is the narrow tier; a wider one, or none, the wide tier.
fn tier_limited(sim: &crate::Sim, start: Option<Micros>, end: Option<Micros>, workspace: Uuid) -> Option<ApiError> {
    const WEEK: Micros = 7 * 86_400 * 1_000_000;
    let end = end.unwrap_or_else(crate::model::now_micros);
    let class = match start {
        Some(start) if end - start <= WEEK => Class::QueryNarrow,
        _ => Class::QueryWide,
    };
    let (_, verdict) = sim
        .faults()
        .check(class, &workspace.to_string(), std::time::Instant::now());
    match verdict {
        Verdict::Limited {
            retry_after_secs,
            plain_body,
        } => {
            sim.counters().rate_limited += 1;
            Some(ApiError::Limited(retry_after_secs, plain_body))
        }
        _ => None,
    }
}

pub async fn read(State(sim): SimState, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let flavour = Flavour::V1;
    let state = sim.state();
    let who = caller(&state, &headers, flavour)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid(flavour, &["path", "run_id"], "Input should be a valid UUID"))?;
    let ws = &state.workspaces[&who.workspace];
    let run = ws.runs.get(&id).ok_or_else(|| ApiError::not_found(flavour, "Run"))?;
    Ok(Json(render::v1_run(run, ws.org_id, &[])))
}
