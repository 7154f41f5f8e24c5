//! `GET /audit-logs`: organization-scoped OCSF "API Activity" records, one per accepted delete.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::{api_key, header};
use super::error::{ApiError, Flavour};
use super::{Params, SimState};
use crate::model::{parse_time, to_rfc3339, AuditEntry};
use crate::query::{decode_cursor, page};

pub async fn list(State(sim): SimState, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let v1 = Flavour::V1;
    let time = |name: &str| -> Result<i64, ApiError> {
        let v = p
            .get(name)
            .ok_or_else(|| ApiError::invalid(v1, &["query", name], "Field required"))?;
        parse_time(v).ok_or_else(|| ApiError::invalid(v1, &["query", name], "Input should be a valid datetime"))
    };
    let (start, end) = (time("start_time")?, time("end_time")?);
    let limit = p.int("limit", 10, 1..=100)?;
    let offset = match p.get("cursor") {
        None => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| ApiError::invalid(v1, &["query", "cursor"], "Invalid cursor"))?,
    };
    let workspace_filter = p.uuid("workspace_id")?;
    let operations: Vec<&str> = p.all("operations").collect();
    let org = header(&headers, "x-organization-id")
        .and_then(|o| Uuid::parse_str(o.trim()).ok())
        .ok_or_else(|| ApiError::v1(StatusCode::FORBIDDEN, "X-Organization-Id header is required"))?;
    let state = sim.state();
    let key = api_key(&state, &headers)?;
    let reaches_org = key
        .workspaces
        .iter()
        .any(|w| state.workspaces.get(w).is_some_and(|ws| ws.org_id == org));
    if !reaches_org {
        return Err(ApiError::v1(StatusCode::FORBIDDEN, "Forbidden"));
    }
    let mut entries: Vec<(Uuid, &AuditEntry)> = state
        .workspaces
        .values()
        .filter(|ws| ws.org_id == org && workspace_filter.is_none_or(|w| w == ws.id))
        .flat_map(|ws| ws.audit.iter().map(move |e| (ws.id, e)))
        .filter(|(_, e)| e.time >= start && e.time <= end)
        .filter(|(_, e)| operations.is_empty() || operations.contains(&e.operation))
        .collect();
    entries.sort_by_key(|(_, e)| (e.time, e.id));
    let (items, next) = page(&entries, offset, limit);
    let items: Vec<Value> = items.iter().map(|(ws, e)| ocsf(org, *ws, e)).collect();
    Ok(Json(json!({"cursor": next, "items": items})))
}

fn ocsf(org: Uuid, workspace: Uuid, e: &AuditEntry) -> Value {
    let ok = e.status < 400;
    json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "severity_id": 99,
        "type_uid": 600304,
        "activity_id": 4,
        "activity_name": "Delete",
        "status_id": if ok { 1 } else { 2 },
        "status": if ok { "Success" } else { "Failure" },
        "time": e.time / 1000,
        "metadata": {"uid": e.id, "product": {"name": "LangSmith", "vendor_name": "LangChain"}},
        "api": {"operation": e.operation},
        "http_request": {"http_method": e.method, "url": {"path": e.path}},
        "http_response": {"code": e.status},
        "actor": {"user": {"uid": null, "credential_uid": e.api_key_id}},
        "src_endpoint": {"ip": "127.0.0.1", "port": null, "intermediate_ips": []},
        "resources": e.resource_ids.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
        "unmapped": {"original_audit_log": {
            "id": e.id,
            "operation_name": e.operation,
            "operation_succeeded": ok,
            "request_time": to_rfc3339(e.time),
            "api_key_id": e.api_key_id,
            "user_id": null,
            "ls_user_id": null,
            "organization_id": org,
            "workspace_id": workspace,
            "enrichments": {
                "request_method": e.method,
                "request_path": e.path,
                "client_host": "127.0.0.1",
                "client_port": null,
                "x_forwarded_for": null,
                "response_status_code": e.status,
                "resource_ids": e.resource_ids,
            },
        }},
    })
}
