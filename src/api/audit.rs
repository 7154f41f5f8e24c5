//! Audit-log correlation (Enterprise, per workspace with `organization_id`). LangSmith writes an
//! OCSF "API Activity" record for each delete call it accepts (operation `delete_runs`); its id,
//! carried in the `deletion-requested` event, ties the event to LangSmith's own trail.
//!
//! `GET /api/v1/audit-logs` is organization-scoped (`X-Organization-Id`), takes a required time
//! range, and answers pages of at most 100 records with a cursor. A record is matched with a delete
//! call by its resources, the trace ids the call named. LangSmith's docs do not say whether a
//! `delete_runs` record lists them: a record that lists none matches nothing, and its ids are
//! counted as missing. A lookup never fails a request: the caller bounds its wait.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{Class, LangSmith, Refused};

/// Pages read per lookup at most (100 records each).
const MAX_PAGES: usize = 20;

#[derive(Deserialize)]
struct Page {
    cursor: Option<String>,
    items: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    metadata: Uid,
    api: Operation,
    /// OCSF: 1 is success.
    status_id: i64,
    #[serde(default)]
    resources: Vec<Uid>,
}

#[derive(Deserialize)]
struct Uid {
    uid: Uuid,
}

#[derive(Deserialize)]
struct Operation {
    operation: String,
}

impl LangSmith {
    /// Whether this workspace's delete calls are matched with audit records.
    pub fn audited(&self) -> bool {
        self.organization.is_some()
    }

    /// Successful `delete_runs` records from `from` to `to` that name any of `ids`: each id found,
    /// with the id of its record.
    pub async fn audit_records(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        ids: &HashSet<Uuid>,
    ) -> Result<HashMap<Uuid, Uuid>, Refused> {
        let Some(org) = &self.organization else {
            return Ok(HashMap::new());
        };
        let url = format!("{}/api/v1/audit-logs", self.root);
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut query = vec![
            ("start_time", time(from)),
            ("end_time", time(to)),
            ("operations", "delete_runs".to_owned()),
            ("limit", "100".to_owned()),
        ];
        let mut found = HashMap::new();
        for _ in 0..MAX_PAGES {
            let page: Page = self
                .fetch(Class::Audit, || {
                    self.send(Class::Audit, |c| {
                        c.get(&url).query(&query).header("x-organization-id", org.as_str())
                    })
                })
                .await?;
            let succeeded = page
                .items
                .iter()
                .filter(|r| r.status_id == 1 && r.api.operation == "delete_runs");
            for record in succeeded {
                let named = record.resources.iter().filter(|r| ids.contains(&r.uid));
                found.extend(named.map(|r| (r.uid, record.metadata.uid)));
            }
            match page.cursor.filter(|c| !c.is_empty() && !page.items.is_empty()) {
                Some(next) => {
                    query.retain(|(k, _)| *k != "cursor");
                    query.push(("cursor", next));
                }
                None => break,
            }
        }
        Ok(found)
    }
}
