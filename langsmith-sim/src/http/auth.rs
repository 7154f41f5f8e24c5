//! `x-api-key` checks and workspace selection by `X-Tenant-Id`.

use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::error::{ApiError, Flavour};
use crate::store::{KeyInfo, State};

/// Who is asking, and for which workspace.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub workspace: Uuid,
    pub key_id: Uuid,
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Resolves the caller: 401 for a missing or unknown key, 403 for a workspace the key cannot reach
/// or an organization-scoped key that names none.
pub fn caller(state: &State, headers: &HeaderMap, flavour: Flavour) -> Result<Caller, ApiError> {
    let info = api_key(state, headers).map_err(|e| match flavour {
        Flavour::V1 => e,
        _ => ApiError::Message(flavour, StatusCode::UNAUTHORIZED, "Invalid token".into()),
    })?;
    let tenant = match header(headers, "x-tenant-id") {
        Some(t) => Some(Uuid::parse_str(t.trim()).map_err(|_| forbidden(flavour))?),
        None => None,
    };
    let workspace = match tenant {
        Some(t) if info.workspaces.contains(&t) => t,
        Some(_) => return Err(forbidden(flavour)),
        // v2's security is API key *and* Tenant ID; a key of exactly one workspace implies it.
        None if flavour == Flavour::V2 && info.workspaces.len() != 1 => {
            return Err(ApiError::Message(
                flavour,
                StatusCode::FORBIDDEN,
                "X-Tenant-Id is required for this key".into(),
            ))
        }
        None if info.org_scoped => {
            return Err(ApiError::Raw(
                StatusCode::FORBIDDEN,
                json!({"error": "org_scoped_key_requires_workspace"}),
            ))
        }
        None => *info.workspaces.first().ok_or_else(|| forbidden(flavour))?,
    };
    Ok(Caller {
        workspace,
        key_id: info.id,
    })
}

/// The key named by `x-api-key`: 401 `{"detail":"Invalid token"}` when missing or unknown.
pub fn api_key<'s>(state: &'s State, headers: &HeaderMap) -> Result<&'s KeyInfo, ApiError> {
    header(headers, "x-api-key")
        .and_then(|k| state.keys.get(k))
        .ok_or_else(|| ApiError::Raw(StatusCode::UNAUTHORIZED, json!({"detail": "Invalid token"})))
}

fn forbidden(flavour: Flavour) -> ApiError {
    ApiError::Message(flavour, StatusCode::FORBIDDEN, "Forbidden".into())
}

/// 403 when any of `projects` is one the key may not touch (attribute-based access control).
pub fn may_touch(forbidden_projects: &[Uuid], projects: &[Uuid], flavour: Flavour) -> Result<(), ApiError> {
    match projects.iter().any(|p| forbidden_projects.contains(p)) {
        true => Err(forbidden(flavour)),
        false => Ok(()),
    }
}
