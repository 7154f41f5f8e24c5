//! JSON shapes of runs, sessions and examples as LangSmith returns them.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::{to_rfc3339, Example, ExampleVersion, Run, Session};

/// v1 `RunSelect` names the simulator can fill.
pub const V1_SELECT: &[&str] = &[
    "id",
    "name",
    "run_type",
    "start_time",
    "end_time",
    "status",
    "error",
    "extra",
    "events",
    "inputs",
    "outputs",
    "parent_run_id",
    "parent_run_ids",
    "child_run_ids",
    "session_id",
    "trace_id",
    "dotted_order",
    "tags",
    "feedback_stats",
    "reference_example_id",
    "serialized",
    "manifest_id",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_cost",
    "prompt_cost",
    "completion_cost",
    "first_token_time",
    "app_path",
    "in_dataset",
    "last_queued_at",
    "share_token",
    "thread_id",
    "trace_tier",
    "ttl_seconds",
    "inputs_preview",
    "outputs_preview",
    "attachments",
    "latency",
    "messages",
    "price_model_id",
    "s3_urls",
];

/// Fields of `RunSchema` the spec marks required: present whatever `select` asks for.
const V1_REQUIRED: [&str; 8] = [
    "name",
    "run_type",
    "trace_id",
    "dotted_order",
    "id",
    "status",
    "session_id",
    "app_path",
];

/// A v1 `RunSchema` with the selected fields (all of them when `select` is empty) and the required ones.
pub fn v1_run(run: &Run, org: Uuid, select: &[String]) -> Value {
    let pick = |name: &str| select.is_empty() || V1_REQUIRED.contains(&name) || select.iter().any(|s| s == name);
    let time = |t: Option<i64>| t.map(to_rfc3339).map_or(Value::Null, Value::String);
    let mut out = Map::new();
    out.insert("id".into(), json!(run.id));
    let mut put = |name: &str, value: Value| {
        if pick(name) {
            out.insert(name.into(), value);
        }
    };
    put("name", json!(run.name));
    put("run_type", json!(run.run_type));
    put("start_time", time(Some(run.start_time)));
    put("end_time", time(run.end_time));
    put("status", json!(run.status));
    put("error", json!(run.error));
    put("extra", json!({"metadata": run.metadata_json()}));
    put("events", json!([]));
    put("inputs", run.inputs.as_deref().cloned().unwrap_or_else(|| json!({})));
    put("outputs", run.outputs.as_deref().cloned().unwrap_or(Value::Null));
    put("parent_run_id", json!(run.parent_run_id));
    put(
        "parent_run_ids",
        json!(run.parent_run_id.into_iter().collect::<Vec<_>>()),
    );
    put("child_run_ids", Value::Null);
    put("session_id", json!(run.session_id));
    put("trace_id", json!(run.trace_id));
    put("dotted_order", json!(run.dotted_order()));
    put("tags", json!(run.tags));
    put("feedback_stats", Value::Null);
    put("reference_example_id", Value::Null);
    put("total_tokens", json!(0));
    put("prompt_tokens", json!(0));
    put("completion_tokens", json!(0));
    put(
        "app_path",
        json!(format!(
            "/o/{org}/projects/p/{}/r/{}?trace_id={}",
            run.session_id, run.id, run.trace_id
        )),
    );
    put("trace_tier", json!("longlived"));
    put("s3_urls", json!({}));
    out.into()
}

/// v2 `selects` names (upper case) the simulator can fill.
pub const V2_SELECT: &[&str] = &[
    "ID",
    "NAME",
    "RUN_TYPE",
    "START_TIME",
    "END_TIME",
    "STATUS",
    "ERROR",
    "TRACE_ID",
    "PROJECT_ID",
    "PARENT_RUN_ID",
    "METADATA",
    "TAGS",
    "INPUTS",
    "OUTPUTS",
    "DOTTED_ORDER",
    "IS_ROOT",
];

/// A v2 run: `id` always, other fields only when selected (v2 returns only ids by default).
pub fn v2_run(run: &Run, selects: &[String]) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(run.id));
    for s in selects {
        let value = match s.as_str() {
            "NAME" => json!(run.name),
            "RUN_TYPE" => json!(run.run_type.to_uppercase()),
            "START_TIME" => json!(to_rfc3339(run.start_time)),
            "END_TIME" => json!(run.end_time.map(to_rfc3339)),
            "STATUS" => json!(run.status),
            "ERROR" => json!(run.error),
            "TRACE_ID" => json!(run.trace_id),
            "PROJECT_ID" => json!(run.session_id),
            "PARENT_RUN_ID" => json!(run.parent_run_id),
            "METADATA" => run.metadata_json(),
            "TAGS" => json!(run.tags),
            "INPUTS" => run.inputs.as_deref().cloned().unwrap_or(Value::Null),
            "OUTPUTS" => run.outputs.as_deref().cloned().unwrap_or(Value::Null),
            "DOTTED_ORDER" => json!(run.dotted_order()),
            "IS_ROOT" => json!(run.is_root()),
            _ => continue,
        };
        out.insert(s.to_lowercase(), value);
    }
    out.into()
}

pub fn session(s: &Session, tenant: Uuid, run_count: Option<usize>) -> Value {
    let mut v = json!({
        "id": s.id,
        "tenant_id": tenant,
        "name": s.name,
        "description": s.description,
        "start_time": to_rfc3339(s.start_time),
        "end_time": null,
        "extra": null,
        "default_dataset_id": null,
        "reference_dataset_id": null,
        "trace_tier": "longlived",
    });
    if let Some(n) = run_count {
        v["run_count"] = json!(n);
    }
    v
}

/// The example `e` as of its version `v`.
/// An example as one of its versions. Inputs nulled by a hard delete (or a tombstone) read as `{}`:
/// the spec's `Example.inputs` is a required object, where outputs and metadata may be null.
pub fn example(e: &Example, v: &ExampleVersion) -> Value {
    json!({
        "id": e.id,
        "dataset_id": e.dataset_id,
        "name": e.name,
        "created_at": to_rfc3339(e.created_at),
        "modified_at": to_rfc3339(v.at),
        "inputs": v.inputs.clone().unwrap_or_else(|| json!({})),
        "outputs": v.outputs,
        "metadata": v.metadata,
        "source_run_id": e.source_run_id,
        "source_trace_id": e.source_trace_id,
        "source_session_id": e.source_session_id,
        "attachment_urls": null,
    })
}
