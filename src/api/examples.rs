//! Dataset examples, as LangSmith's "Data purging for compliance" guide erases them: found by
//! metadata (`GET /api/v1/examples` with a `filter`, as of a time), hard-deleted
//! (`POST …/platform/datasets/examples/delete`: inputs, outputs and metadata nulled in every
//! version, at once) and read back to prove it. A trace's delete does not reach the examples made
//! from it (and the search has no filter on their source: they are found by reading every example's
//! source), and the soft delete keeps every earlier version.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{filter, Class, LangSmith, Refusal, Refused};

/// Examples per search page, and per read-back (LangSmith's `limit` is at most 100).
const PAGE: usize = 100;
/// Examples one selector (and one request) reaches at most; past it the search stops, and a
/// warning says so.
pub const MAX_EXAMPLES: usize = 100_000;
/// Ids per hard delete (LangSmith takes 1 to 1000).
pub const EXAMPLES_PER_DELETE: usize = 1000;

#[derive(Deserialize)]
struct Example {
    id: Uuid,
    #[serde(default)]
    inputs: Option<Value>,
    #[serde(default)]
    outputs: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// Whether an example's `metadata` holds every pair, each value a string equal to it (what
/// `has(metadata, '{…}')` matches).
fn holds_pairs(metadata: Option<&Value>, pairs: &BTreeMap<String, String>) -> bool {
    let Some(Value::Object(metadata)) = metadata else {
        return false;
    };
    (pairs.iter()).all(|(k, v)| metadata.get(k).and_then(Value::as_str) == Some(v.as_str()))
}

/// An example, as far as where it was made from goes.
#[derive(Debug, Deserialize)]
pub struct Sourced {
    pub id: Uuid,
    #[serde(default)]
    pub source_trace_id: Option<Uuid>,
    #[serde(default)]
    pub source_run_id: Option<Uuid>,
}

impl Example {
    /// Whether LangSmith still holds data of it. A hard delete nulls all three; an answer may render
    /// a nulled one as null or empty (the spec's `inputs` is a required object).
    fn holds_data(&self) -> bool {
        let held = |v: &Option<Value>| match v {
            None | Some(Value::Null) => false,
            Some(Value::Object(m)) => !m.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        held(&self.inputs) || held(&self.outputs) || held(&self.metadata)
    }
}

/// The platform endpoints' prefix: LangSmith's SDK calls `/v1/platform/…` on the API root, and
/// `/platform/…` under an API URL that ends in `/v1` (self-hosted `…/api/v1`).
pub fn platform_prefix(api_url: &str) -> String {
    let url = api_url.trim_end_matches('/');
    if url.ends_with("/api/v1") {
        "/api/v1/platform".into()
    } else {
        "/v1/platform".into()
    }
}

impl LangSmith {
    /// Whether the dataset examples a selector reaches are erased in this workspace.
    pub fn erases_examples(&self) -> bool {
        self.erase_examples
    }

    /// Per set of pairs, the examples whose metadata (as of `as_of`) holds every pair, and whether
    /// there were more than [`MAX_EXAMPLES`]. Several sets are searched together, with an `or` of
    /// their filters, and the examples told apart by their metadata: `None` when an example holds
    /// no set's pairs as written here (LangSmith compared in a way this code does not), for the
    /// caller to search each set alone.
    pub async fn examples_holding(
        &self,
        sets: &[BTreeMap<String, String>],
        as_of: DateTime<Utc>,
    ) -> Result<Option<Vec<(Vec<Uuid>, bool)>>, Refused> {
        let url = format!("{}/api/v1/examples", self.root);
        let as_of = as_of.to_rfc3339_opts(SecondsFormat::Micros, true);
        let holds =
            |set: &BTreeMap<String, String>| filter::metadata_holds(set.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let filter = match sets {
            [one] => holds(one),
            _ => format!("or({})", sets.iter().map(holds).collect::<Vec<_>>().join(", ")),
        };
        let (mut each, mut offset) = (vec![(Vec::new(), false); sets.len()], 0);
        loop {
            let (at, limit) = (offset.to_string(), PAGE.to_string());
            let mut query = vec![("filter", filter.as_str()), ("as_of", as_of.as_str())];
            query.extend([("offset", at.as_str()), ("limit", limit.as_str())]);
            if sets.len() > 1 {
                query.extend([("select", "id"), ("select", "metadata")]);
            }
            let page: Vec<Example> = self
                .fetch(Class::Examples, || {
                    self.send(Class::Examples, |c| c.get(&url).query(&query))
                })
                .await?;
            offset += page.len();
            let full = page.len() == PAGE;
            for example in page {
                let mut claimed = false;
                for (set, (ids, more)) in sets.iter().zip(&mut each) {
                    if sets.len() > 1 && !holds_pairs(example.metadata.as_ref(), set) {
                        continue;
                    }
                    claimed = true;
                    match ids.len() < MAX_EXAMPLES {
                        true => ids.push(example.id),
                        false => *more = true,
                    }
                }
                if !claimed {
                    return Ok(None);
                }
            }
            if !full || each.iter().all(|(_, more)| *more) {
                return Ok(Some(each));
            }
        }
    }

    /// Every example of the workspace (as of `as_of`) made from a run or trace: its id, with the
    /// ids of its source trace and source run. LangSmith's example search has no filter on them, so
    /// this reads the whole workspace, a page of [`PAGE`] at a time, with only those fields.
    pub async fn examples_made_from_runs(&self, as_of: DateTime<Utc>) -> Result<Vec<Sourced>, Refused> {
        let url = format!("{}/api/v1/examples", self.root);
        let as_of = as_of.to_rfc3339_opts(SecondsFormat::Micros, true);
        let (mut offset, mut sourced) = (0, Vec::new());
        loop {
            let (at, limit) = (offset.to_string(), PAGE.to_string());
            let query = [
                ("select", "id"),
                ("select", "source_trace_id"),
                ("select", "source_run_id"),
                ("as_of", as_of.as_str()),
                ("offset", at.as_str()),
                ("limit", limit.as_str()),
            ];
            let page: Vec<Sourced> = self
                .fetch(Class::Examples, || {
                    self.send(Class::Examples, |c| c.get(&url).query(&query))
                })
                .await?;
            offset += page.len();
            let full = page.len() == PAGE;
            sourced.extend(
                page.into_iter()
                    .filter(|e| e.source_trace_id.is_some() || e.source_run_id.is_some()),
            );
            if !full {
                return Ok(sourced);
            }
        }
    }

    /// Hard-deletes at most [`EXAMPLES_PER_DELETE`] examples; returns those refused for good, with
    /// why. A refused call is bisected like a trace delete, so one example LangSmith will not delete
    /// (a 4xx, or 5xx again and again while other calls are answered) fails alone; a 403 (the key's
    /// role lacks the permission) fails the call at once. A 404 (none of them exists) is no refusal:
    /// there is nothing left to erase.
    pub async fn hard_delete_examples(&self, ids: &[Uuid]) -> HashMap<Uuid, Refusal> {
        let url = format!("{}{}/datasets/examples/delete", self.root, self.platform);
        let call = |chunk: Vec<Uuid>, split| {
            let (url, body) = (&url, serde_json::json!({"example_ids": chunk, "hard_delete": true}));
            async move {
                let mut a = self
                    .send_bounded(Class::Examples, |c| c.post(url).json(&body), split)
                    .await;
                if a.status == StatusCode::NOT_FOUND {
                    a.status = StatusCode::OK;
                }
                a
            }
        };
        self.bisected(Class::Examples, "the examples hard delete", ids, call)
            .await
    }

    /// Of `ids`, those LangSmith still holds inputs, outputs or metadata of (latest version).
    pub async fn examples_holding_data(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, Refused> {
        let url = format!("{}/api/v1/examples", self.root);
        let mut held = HashSet::new();
        for chunk in ids.chunks(PAGE) {
            let limit = PAGE.to_string();
            let mut query: Vec<(&str, String)> = chunk.iter().map(|id| ("id", id.to_string())).collect();
            query.push(("limit", limit));
            let page: Vec<Example> = self
                .fetch(Class::Examples, || {
                    self.send(Class::Examples, |c| c.get(&url).query(&query))
                })
                .await?;
            held.extend(page.iter().filter(|e| e.holds_data()).map(|e| e.id));
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::{platform_prefix, Example};

    #[test]
    fn an_example_read_back_empty_or_null_holds_no_data() {
        let read = |v: serde_json::Value| serde_json::from_value::<Example>(v).unwrap().holds_data();
        let id = uuid::Uuid::new_v4();
        assert!(!read(
            serde_json::json!({"id": id, "inputs": {}, "outputs": null, "metadata": null})
        ));
        assert!(!read(serde_json::json!({"id": id, "inputs": null})));
        assert!(read(
            serde_json::json!({"id": id, "inputs": {}, "metadata": {"user_id": "u"}})
        ));
        assert!(read(serde_json::json!({"id": id, "inputs": {"q": "x"}})));
    }

    #[test]
    fn platform_endpoints_follow_the_sdk() {
        assert_eq!(platform_prefix("https://api.smith.langchain.com"), "/v1/platform");
        assert_eq!(platform_prefix("https://api.smith.langchain.com/api"), "/v1/platform");
        assert_eq!(platform_prefix("http://host/api/v1/"), "/api/v1/platform");
    }
}
