//! The simulator's own tests, over HTTP: every endpoint, the error shapes, pagination, the
//! deletion window and each fault.

mod auth_faults;
mod example_versions;
mod examples_audit;
mod fidelity;
mod runs_delete;
mod runs_query;
mod sessions;
mod v2;

use std::sync::Arc;

use langsmith_sim::Sim;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// A simulator on a free loopback port with no rate limits, one workspace reachable with `key`.
pub struct Env {
    pub sim: Arc<Sim>,
    pub base: String,
    pub http: reqwest::Client,
    pub ws: Uuid,
    pub key: &'static str,
}

pub const KEY: &str = "lsv2_pt_test";

impl Env {
    pub async fn start() -> Env {
        let sim = Sim::new(42);
        sim.set_schedule(langsmith_sim::window::Schedule::Manual);
        let addr = sim.clone().spawn().await.expect("bind a loopback port");
        let env = Env {
            sim,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            ws: Uuid::nil(),
            key: KEY,
        };
        let (_, created) = env
            .admin(
                Method::POST,
                "/_sim/workspaces",
                json!({"name": "main", "api_keys": [KEY]}),
            )
            .await;
        env.admin(Method::DELETE, "/_sim/faults", Value::Null).await;
        Env {
            ws: created["id"].as_str().unwrap().parse().unwrap(),
            ..env
        }
    }

    /// Sends `body` (JSON, or nothing when null) and returns the status and the JSON answer.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request reaches the simulator");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn api(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(method, path, Some(self.key), body).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, v) = self.call(method, path, None, body).await;
        assert!(status.is_success(), "admin {path}: {status} {v}");
        (status, v)
    }

    pub async fn load(&self, body: Value) -> Value {
        self.admin(Method::POST, &format!("/_sim/workspaces/{}/load", self.ws), body)
            .await
            .1
    }

    /// A session with `n` single-run traces, each with metadata `user_id = u{i}`; returns (session, trace ids).
    pub async fn session_with_traces(&self, name: &str, n: usize) -> (Uuid, Vec<Uuid>) {
        let loaded = self.load(json!({"sessions": [{"name": name}]})).await;
        let session: Uuid = loaded["sessions"][0].as_str().unwrap().parse().unwrap();
        let body = json!({"session_id": session, "traces": n, "return_ids": true, "spread_seconds": 60,
                          "metadata": [{"key": "user_id", "prefix": "u"}]});
        let (_, made) = self
            .admin(Method::POST, &format!("/_sim/workspaces/{}/generate", self.ws), body)
            .await;
        let ids = made["trace_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse().unwrap())
            .collect();
        (session, ids)
    }

    pub async fn counters(&self) -> Value {
        self.admin(Method::GET, "/_sim/counters", Value::Null).await.1
    }
}

pub fn ids_of(items: &Value, field: &str) -> Vec<Uuid> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Percent-encodes every byte but ASCII letters and digits: a query parameter's value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b.is_ascii_alphanumeric() {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}
