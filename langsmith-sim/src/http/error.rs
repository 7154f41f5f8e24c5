//! The error shapes LangSmith answers with: FastAPI `detail` (v1), RFC 7807 problems (v2),
//! `{error, details}` (Go platform endpoints).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flavour {
    V1,
    V2,
    Platform,
}

#[derive(Debug)]
pub enum ApiError {
    /// `{"detail": "<message>"}` in v1; the matching shape in the other flavours.
    Message(Flavour, StatusCode, String),
    /// A 422 validation error at `loc` (`["body"]`, `["query", "limit"]`).
    Invalid(Flavour, Vec<Value>, String),
    Raw(StatusCode, Value),
    /// 429, with `Retry-After` seconds when given, plain text when asked.
    Limited(Option<u64>, bool),
}

impl ApiError {
    pub fn v1(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError::Message(Flavour::V1, status, msg.into())
    }

    pub fn invalid(flavour: Flavour, loc: &[&str], msg: impl Into<String>) -> Self {
        ApiError::Invalid(flavour, loc.iter().map(|s| Value::from(*s)).collect(), msg.into())
    }

    pub fn not_found(flavour: Flavour, what: &str) -> Self {
        ApiError::Message(flavour, StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Limited(retry_after, plain) => return super::too_many_requests(retry_after, plain),
            ApiError::Raw(status, body) => (status, body),
            ApiError::Message(flavour, status, msg) => (status, shape(flavour, status, msg, None)),
            ApiError::Invalid(flavour, loc, msg) => {
                let status = if flavour == Flavour::Platform {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                (status, shape(flavour, status, msg, Some(loc)))
            }
        };
        (status, Json(body)).into_response()
    }
}

fn shape(flavour: Flavour, status: StatusCode, msg: String, loc: Option<Vec<Value>>) -> Value {
    match (flavour, loc) {
        (Flavour::V1, Some(loc)) => {
            json!({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]})
        }
        (Flavour::V1, None) => json!({"detail": msg}),
        (Flavour::V2, _) => json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": msg,
        }),
        (Flavour::Platform, _) => {
            json!({"error": status.canonical_reason().unwrap_or("error").to_lowercase(), "details": msg})
        }
    }
}
