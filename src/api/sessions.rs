//! Projects ("sessions"): lookups by name and id, the full list, and the workspace id (tenant) that
//! v2 calls must carry, learnt from a project object when it is not configured.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::{Class, LangSmith, Refused};
use crate::telemetry::{Occurrence, TenantLearnt};

/// A workspace with no project yet is asked again for its id at most this often.
const LEARN_AGAIN_AFTER: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct SessionRow {
    id: Uuid,
    name: Option<String>,
    tenant_id: Option<Uuid>,
}

impl LangSmith {
    /// The id of the project with exactly this name, if there is one.
    pub async fn session_by_name(&self, name: &str) -> Result<Option<Uuid>, Refused> {
        let url = format!("{}/api/v1/sessions", self.root);
        let query = [("name", name), ("limit", "1")];
        let found: Vec<SessionRow> = self
            .fetch(Class::Sessions, || {
                self.send(Class::Sessions, |c| c.get(&url).query(&query))
            })
            .await?;
        Ok(found
            .into_iter()
            .find(|s| s.name.as_deref() == Some(name))
            .map(|s| s.id))
    }

    pub async fn session_exists(&self, id: Uuid) -> Result<bool, Refused> {
        let url = format!("{}/api/v1/sessions/{id}", self.root);
        let a = self.send(Class::Sessions, |c| c.get(&url)).await;
        match a.status {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(a.into()),
        }
    }

    /// Every project of the workspace (offset pagination).
    pub async fn all_sessions(&self) -> Result<Vec<Uuid>, Refused> {
        let url = format!("{}/api/v1/sessions", self.root);
        let mut out = Vec::new();
        loop {
            let offset = out.len().to_string();
            let query = [("offset", offset.as_str()), ("limit", "100")];
            let page: Vec<SessionRow> = self
                .fetch(Class::Sessions, || {
                    self.send(Class::Sessions, |c| c.get(&url).query(&query))
                })
                .await?;
            let n = page.len();
            out.extend(page.into_iter().map(|s| s.id));
            if n < 100 {
                return Ok(out);
            }
        }
    }

    /// Makes sure `X-Tenant-Id` is known before a v2 call (LangSmith's spec requires it there):
    /// configured, or read once from any project of the workspace the key selects by default.
    /// A workspace without projects has nothing to check yet; it is asked again later.
    pub(super) async fn ensure_tenant(&self) {
        if self.tenant.get().is_some() {
            return;
        }
        let mut last = self.learning.lock().await;
        if self.tenant.get().is_some() || last.is_some_and(|t| t.elapsed() < LEARN_AGAIN_AFTER) {
            return;
        }
        *last = Some(Instant::now());
        let url = format!("{}/api/v1/sessions", self.root);
        let a = self
            .send(Class::Sessions, |c| c.get(&url).query(&[("limit", "1")]))
            .await;
        let rows = a.ok().then(|| serde_json::from_slice::<Vec<SessionRow>>(&a.body).ok());
        let tenant = rows
            .flatten()
            .and_then(|rows| rows.into_iter().find_map(|s| s.tenant_id));
        match tenant {
            Some(t) => {
                let tenant = &t.to_string();
                TenantLearnt {
                    workspace: &self.alias,
                    tenant,
                }
                .emit(self.metrics.as_deref());
                let _ = self.tenant.set(t.to_string());
            }
            None => tracing::warn!(workspace = %self.alias,
                "could not learn the workspace id (no project, or an unreadable answer): v2 calls go without X-Tenant-Id; set tenant_id"),
        }
    }
}
