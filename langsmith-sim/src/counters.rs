//! What the simulator saw: calls per endpoint and status, ids per delete call, 429s, deletes.

use std::collections::BTreeMap;

use serde::Serialize;

/// Upper bounds of the ids-per-delete-call histogram buckets (the last one is open).
const ID_BUCKETS: [usize; 7] = [1, 10, 100, 250, 500, 999, 1000];

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// "POST /runs/delete" → status → count.
    pub calls: BTreeMap<String, BTreeMap<u16, u64>>,
    /// "POST /runs/delete" → requests received, counted on arrival (before faults and latency, so a
    /// request still being answered is counted).
    pub received: BTreeMap<String, u64>,
    pub rate_limited: u64,
    pub injected_errors: u64,
    pub delete_calls_accepted: u64,
    pub delete_ids_total: u64,
    pub delete_ids_max: usize,
    /// "≤1", "≤10", … "≤1000", ">1000" → accepted delete calls.
    pub delete_ids_histogram: BTreeMap<String, u64>,
    pub queued_traces: u64,
    pub applied_traces: u64,
    pub skipped_traces: u64,
    pub windows_run: u64,
}

/// The v2 traces query under both prefixes, as counters name it.
pub const V2_TRACES_QUERY: [&str; 2] = ["POST /api/v2/traces/query", "POST /v2/traces/query"];

impl Counters {
    /// Calls to any of `endpoints`, whatever their status.
    pub fn calls_to(&self, endpoints: &[&str]) -> u64 {
        endpoints
            .iter()
            .filter_map(|e| self.calls.get(*e))
            .flat_map(|by_status| by_status.values())
            .sum()
    }

    pub fn call(&mut self, endpoint: &str, status: u16) {
        *self
            .calls
            .entry(endpoint.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    pub fn accepted_delete(&mut self, ids: usize) {
        self.delete_calls_accepted += 1;
        self.delete_ids_total += ids as u64;
        self.delete_ids_max = self.delete_ids_max.max(ids);
        let bucket = match ID_BUCKETS.iter().find(|b| ids <= **b) {
            Some(b) => format!("<={b:04}"),
            None => ">1000".to_owned(),
        };
        *self.delete_ids_histogram.entry(bucket).or_default() += 1;
    }
}
