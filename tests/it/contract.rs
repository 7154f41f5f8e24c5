//! Contract tests against LangSmith's published OpenAPI spec (`shared/langsmith-openapi/`, as
//! published, unchanged): every request the worker sends in a varied pipeline run, and every answer
//! the simulator gives, is checked against the spec's schema for its path, method and status.
//!
//! Requests are checked strictly: a top-level body field or query parameter the spec does not
//! declare is an error (the server would silently ignore a misspelt one). Where the simulator
//! deliberately differs from the spec, it follows the live service's documented behaviour; those
//! places are [`KNOWN_DIFFERENCES`], each with its reason.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use erasure_worker::api::{filter, Search, Share};
use langsmith_sim::window::Schedule;
use langsmith_sim::Exchange;
use serde_json::{json, Value};

use crate::support::private_simulator;
use crate::verify::{all_terminal, requests};
use crate::world::World;

/// Where the spec contradicts itself, the correction the contract applies: (schema, property, the
/// property's schema, why).
const SPEC_CORRECTIONS: [(&str, &str, &str); 2] = [
    (
        "query.QueryTracesResponseBody",
        "next_cursor",
        "typed string, but described as \"Null on the final page\"",
    ),
    (
        "query.QueryRunsResponseBody",
        "next_cursor",
        "typed string, but described as \"Null on the final page\"",
    ),
];

/// (spec path, status, why the simulator answers a status the spec does not declare there).
const KNOWN_DIFFERENCES: [(&str, u16, &str); 5] = [
    ("/api/v1/runs/{run_id}", 404, "an unknown run answers 404 (FastAPI), which the spec leaves out"),
    ("/api/v1/runs/delete", 202, "every first-hand report of the live service sees 202 {\"message\":\"Run deletes queued\"}; the spec says 200 {}"),
    ("/api/v1/sessions/{session_id}", 404, "an unknown project answers 404 (FastAPI), which the spec leaves out"),
    ("/api/v1/runs/query", 429, "LangSmith documents 429 for every rate limit; the v1 spec declares none"),
    ("/api/v1/runs/delete", 403, "attribute-based access control answers 403 per project; the v1 spec declares none"),
];

fn spec() -> Value {
    let path = std::env::var_os("LANGSMITH_OPENAPI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/langsmith-openapi/subset-2026-07-24.json")
        });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "LangSmith's OpenAPI spec is needed at {} ({e}): it lives in shared/ beside the checkout; \
             set LANGSMITH_OPENAPI to another copy",
            path.display()
        )
    });
    let mut spec: Value = serde_json::from_str(&text).expect("the spec is JSON");
    for (schema, property, _why) in SPEC_CORRECTIONS {
        let p = &mut spec["components"]["schemas"][schema]["properties"][property];
        assert_eq!(
            p["type"], "string",
            "{schema}.{property}: the spec changed; review the correction"
        );
        p["type"] = json!(["string", "null"]);
    }
    spec
}

struct Contract {
    spec: Value,
}

/// The spec's path for a requested one: v2 is declared under `/v2` (the SDK calls `/api/v2`).
fn spec_path(path: &str) -> String {
    match path.strip_prefix("/api/v2/") {
        Some(rest) => format!("/v2/{rest}"),
        None => path.to_owned(),
    }
}

impl Contract {
    /// The spec's path template and operation for `method path`.
    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let path = spec_path(path);
        let segments: Vec<&str> = path.split('/').collect();
        let (template, item) = self.spec["paths"].as_object()?.iter().find(|(t, _)| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == segments.len()
                && ts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
        })?;
        Some((template.clone(), item.get(method.to_lowercase())?))
    }

    /// A validator for `schema` (a spec schema or `$ref`), resolving refs in the spec's components.
    fn validator(&self, schema: &Value, strict: bool) -> jsonschema::Validator {
        let mut components = self.spec["components"].clone();
        let mut schema = schema.clone();
        if strict {
            // The top level of a request body: undeclared fields are errors.
            let target = match schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
                Some(name) => &mut components["schemas"][name],
                None => &mut schema,
            };
            if target.get("properties").is_some() {
                target["additionalProperties"] = json!(false);
            }
        }
        let root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "components": components, "allOf": [schema]});
        jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .expect("spec schema compiles")
    }

    fn errors(&self, schema: &Value, instance: &Value, strict: bool) -> Vec<String> {
        self.validator(schema, strict)
            .iter_errors(instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }

    /// What is wrong with the request of `x` (empty: nothing).
    fn request_errors(&self, x: &Exchange) -> Vec<String> {
        let Some((template, op)) = self.operation(&x.method, &x.path) else {
            return vec![format!("{} {} is not in the spec", x.method, x.path)];
        };
        let mut errors = Vec::new();
        if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
            match &x.request {
                Some(body) => errors.extend(self.errors(schema, body, true)),
                None => errors.push(format!("{template}: no JSON body")),
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let query = form_urlencoded::parse(x.query.as_deref().unwrap_or_default().as_bytes());
        for (name, value) in query {
            let Some(p) = params.iter().find(|p| p["in"] == "query" && p["name"] == *name) else {
                errors.push(format!("{template}: query parameter {name:?} is not declared"));
                continue;
            };
            // A query value is text; it fits if it fits as a string or as the JSON it spells (a number).
            // An array parameter (or one that may be an array) is sent as repeated keys, one item each.
            let options = p["schema"]["anyOf"].as_array().into_iter().flatten();
            let array = std::iter::once(&p["schema"])
                .chain(options)
                .find(|s| s["type"] == "array");
            let schema = array.map_or(&p["schema"], |a| &a["items"]);
            let as_text = Value::String(value.to_string());
            let fits = |v: &Value| self.errors(schema, v, false).is_empty();
            if !fits(&as_text) && !serde_json::from_str::<Value>(&value).is_ok_and(|v| fits(&v)) {
                errors.push(format!(
                    "{template}: query parameter {name:?} = {value:?} does not fit {schema}"
                ));
            }
        }
        if op["security"]
            .as_array()
            .is_some_and(|s| s.iter().all(|alt| alt.get("Tenant ID").is_some()))
            && !x.tenant
        {
            errors.push(format!("{template}: the spec requires X-Tenant-Id"));
        }
        errors
    }

    /// What is wrong with the answer of `x` (empty: nothing).
    fn response_errors(&self, x: &Exchange) -> Vec<String> {
        let Some((template, op)) = self.operation(&x.method, &x.path) else {
            return vec![format!("{} {} is not in the spec", x.method, x.path)];
        };
        let Some(declared) = op["responses"].get(x.status.to_string()) else {
            let known = KNOWN_DIFFERENCES
                .iter()
                .any(|(p, s, _)| *p == template && *s == x.status);
            return match known {
                true => Vec::new(),
                false => vec![format!("{template}: status {} is not declared", x.status)],
            };
        };
        match (declared.pointer("/content/application~1json/schema"), &x.response) {
            (Some(schema), Some(body)) => self.errors(schema, body, false),
            (Some(_), None) => vec![format!("{template}: {} without a JSON body", x.status)],
            (None, _) => Vec::new(),
        }
    }
}

/// A pipeline run that calls every endpoint the worker uses: projects by id and by name, an
/// unknown project, selectors with and without a range, scope and `root_only`, v2 checks, audit-log
/// lookups, a selector's dataset examples searched, hard-deleted and read back; then
/// v1 selector queries and checks, by an intake and a verifier of other groups.
async fn record_a_varied_run(world: &World) -> Vec<Exchange> {
    world.sim.behaviour().record_exchanges = true;
    let (mut data, mut want) = requests(world, 6, 2);
    let session = world.sessions(1)[0];
    // Each selector that must end naming its traces has traces of its own: one resolved after
    // another's deletes were applied would find nothing.
    let traces_of = |subject: &str| {
        let gen = json!({"session_id": session, "traces": 2, "return_ids": true,
                         "metadata": [{"key": "user_id", "prefix": subject, "distinct": 1}]});
        let (_, ids) = world
            .sim
            .state()
            .generate(world.ws, serde_json::from_value(gen).unwrap())
            .unwrap();
        ids.into_iter().collect::<BTreeSet<_>>()
    };
    want.insert("c-selector".into(), traces_of("u-contract"));
    want.insert("c-root".into(), traces_of("u-root"));
    // The range selector's own subject: sharing c-selector's, its deletes, once applied, could
    // leave c-selector nothing to find (seen once: the run never ended).
    traces_of("u-range");
    let example =
        json!({"dataset_id": uuid::Uuid::new_v4(), "inputs": {"q": "hi"}, "metadata": {"user_id": "u-contract0"}});
    let example = serde_json::from_value(example).unwrap();
    world.sim.state().add_example(world.ws, example).unwrap();
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(1)).to_rfc3339();
    let (name, unknown) = ("project-0", uuid::Uuid::new_v4());
    data.extend([
        json!({"request_id": "c-selector", "targets": [{"metadata": {"user_id": "u-contract0"}}]}),
        json!({"request_id": "c-range", "targets": [{"metadata": {"user_id": "u-range0"}, "session_id": session,
               "start_time": recent, "end_time": chrono::Utc::now().to_rfc3339()}]}),
        json!({"request_id": "c-root", "targets": [{"metadata": {"user_id": "u-root0"}, "root_only": true}]}),
        json!({"request_id": "c-name", "targets": [{"session_name": name, "trace_ids": [uuid::Uuid::new_v4()]}]}),
        json!({"request_id": "c-unknown", "targets": [{"session_id": unknown, "trace_ids": [uuid::Uuid::new_v4()]}]}),
    ]);
    // With the organization configured, the intake looks up its delete calls' audit records too.
    let org = world.sim.state().workspaces[&world.ws].org_id;
    let config = world.config(&format!(
        "[intake]\nlinger = \"200ms\"\n[window]\nkind = \"fixed\"\ndelay = \"1s\"\n\
         [workspaces.main]\norganization_id = \"{org}\"\n"
    ));
    let (stop_intake, intake) = world.start(config.clone());
    let (stop_verifier, verifier) = world.start_verifier(config);
    world.publish_many(&data).await;
    world
        .collect(Duration::from_secs(120), |o| all_terminal(o, &want))
        .await;
    stop_verifier.send(()).unwrap();
    verifier.await.unwrap().unwrap();
    stop_intake.send(()).unwrap();
    intake.await.unwrap().unwrap();
    // The same requests resolved and the same parts checked again through v1, by an intake and a
    // verifier of other groups.
    let v1_config = format!(
        "[verifier]\nquery_api = \"v1\"\n[kafka]\nverifier_group = \"{0}.v1\"\nintake_group = \"{0}.v1\"\n",
        world.prefix
    );
    let (stop_v1, v1) = world.start_verifier(world.config(&v1_config));
    let (stop_v1_intake, v1_intake) = world.start(world.config(&v1_config));
    // Not asserted here: the spec check comes first, and the coverage check names what is missing.
    let v1_asked = |field: &str| {
        let recorded = world.sim.exchanges();
        recorded
            .iter()
            .any(|x| x.path.ends_with("v1/runs/query") && x.request.as_ref().is_some_and(|b| b.get(field).is_some()))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(v1_asked("id") && v1_asked("filter") && v1_asked("tree_filter")) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_v1.send(()).unwrap();
    stop_v1_intake.send(()).unwrap();
    v1.await.unwrap().unwrap();
    v1_intake.await.unwrap().unwrap();
    searched_together(world, session).await;
    world.sim.exchanges().clone()
}

/// Selectors searched together, as a round of the intake searches them (which rounds group which
/// selectors in a run depends on timing): a tree query and its roots' start times, a `root_only`
/// query, and an example search of two selectors.
async fn searched_together(world: &World, session: uuid::Uuid) {
    let metrics = std::sync::Arc::new(erasure_worker::metrics::Metrics::new());
    let clients = erasure_worker::api::clients(&world.config(""), &metrics).expect("clients");
    let api = &clients["main"];
    let start = chrono::Utc::now() - chrono::TimeDelta::days(1);
    for root_only in [false, true] {
        let searches: Vec<Search> = ["u-contract0", "u-root0"]
            .map(|v| Search {
                pairs: vec![("user_id".into(), v.into())],
                expr: filter::metadata_all([("user_id", v)]),
                root_only,
                start,
                end: None,
            })
            .into();
        let mut query = api.together([session].into(), &searches);
        while let Some(share) = query.next().await.expect("the query is answered") {
            assert!(matches!(share, Share::Each(_)), "{share:?}");
        }
    }
    let sets = ["u-contract0", "u-root0"].map(|v| [("user_id".to_owned(), v.to_owned())].into());
    let found = api.examples_holding(&sets, chrono::Utc::now()).await;
    assert!(found.expect("the search is answered").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_and_answer_matches_the_published_spec() {
    let contract = Contract { spec: spec() };
    let sim = private_simulator();
    sim.sim.set_schedule(Schedule::Every { seconds: 0.3 });
    let world = World::new(&sim, 1).await;
    let exchanges = record_a_varied_run(&world).await;

    let mut problems = BTreeSet::new();
    let mut covered = BTreeSet::new();
    for x in &exchanges {
        for e in contract
            .request_errors(x)
            .into_iter()
            .chain(contract.response_errors(x))
        {
            problems.insert(format!("{} {} → {}: {e}", x.method, x.path, x.status));
        }
        if let Some((template, _)) = contract.operation(&x.method, &x.path) {
            covered.insert(format!("{} {template}", x.method));
        }
    }
    assert!(
        problems.is_empty(),
        "{} distinct breaches of the spec in {} exchanges:\n{}",
        problems.len(),
        exchanges.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
    let together = |x: &&Exchange| {
        x.request
            .as_ref()
            .is_some_and(|b| b["selects"].to_string().contains("METADATA"))
    };
    assert!(
        exchanges.iter().filter(together).count() >= 2,
        "no selectors searched together were recorded"
    );
    let v1_check = exchanges
        .iter()
        .any(|x| x.path.ends_with("/runs/query") && x.request.as_ref().is_some_and(|b| b.get("id").is_some()));
    assert!(v1_check, "no v1 check was recorded");
    let want = [
        "GET /api/v1/sessions",
        "GET /api/v1/sessions/{session_id}",
        "POST /api/v1/runs/delete",
        "POST /api/v1/runs/query",
        "POST /v2/traces/query",
        "POST /v2/runs/query",
        "GET /api/v1/audit-logs",
        "GET /api/v1/examples",
        "POST /v1/platform/datasets/examples/delete",
    ];
    for w in want {
        assert!(covered.contains(w), "{w} was not exercised: {covered:?}");
    }

    // The check has teeth: a misspelt field in a real request is caught.
    for (path, field, typo) in [
        ("/api/v1/runs/delete", "trace_ids", "trace_idz"),
        ("/api/v2/traces/query", "trace_ids", "traceIds"),
        ("/api/v1/runs/query", "filter", "filters"),
        ("/api/v1/runs/query", "tree_filter", "tree_filterz"),
        ("/api/v2/runs/query", "filter", "filterz"),
        ("/api/v2/runs/query", "tree_filter", "tree_filterz"),
    ] {
        let mut x = exchanges
            .iter()
            .find(|x| x.path == path && x.request.as_ref().is_some_and(|b| b.get(field).is_some()))
            .unwrap_or_else(|| panic!("no recorded {path} with {field}"))
            .clone();
        assert!(contract.request_errors(&x).is_empty());
        let body = x.request.as_mut().unwrap().as_object_mut().unwrap();
        let value = body.remove(field).unwrap();
        body.insert(typo.into(), value);
        let errors = contract.request_errors(&x);
        assert!(
            errors.iter().any(|e| e.contains(typo)),
            "{path}: {typo} not caught: {errors:?}"
        );
    }
}

/// The endpoints the worker does not call yet (single runs, examples), the audit log's pages, and
/// error answers, called directly: the simulator's answers must fit the spec there too.
#[tokio::test]
async fn the_simulators_other_endpoints_answer_as_the_spec_says() {
    let contract = Contract { spec: spec() };
    let sim = private_simulator();
    sim.sim.clear_faults();
    let (ws, key) = sim.workspace();
    let (session, org) = {
        let mut state = sim.sim.state();
        let session = state
            .add_session(ws, serde_json::from_value(json!({"name": "c"})).unwrap())
            .unwrap();
        (session, state.workspaces[&ws].org_id)
    };
    let run = uuid::Uuid::new_v4();
    let (dataset, example) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let load = json!({"runs": [{"id": run, "session_id": session, "metadata": {"user_id": "u-1"}}],
        "examples": [{"id": example, "dataset_id": dataset, "inputs": {"q": "hi"}, "metadata": {"user_id": "u-1"}, "source_run_id": run}]});
    {
        let mut state = sim.sim.state();
        for r in load["runs"].as_array().unwrap() {
            state.add_run(ws, serde_json::from_value(r.clone()).unwrap()).unwrap();
        }
        for e in load["examples"].as_array().unwrap() {
            state
                .add_example(ws, serde_json::from_value(e.clone()).unwrap())
                .unwrap();
        }
    }
    sim.sim.behaviour().record_exchanges = true;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", sim.base_url);
    let now = chrono::Utc::now();
    let (from, to) = (
        (now - chrono::TimeDelta::days(1)).to_rfc3339(),
        (now + chrono::TimeDelta::days(1)).to_rfc3339(),
    );
    let calls = [
        http.get(url(&format!("/api/v1/runs/{run}"))),
        http.get(url(&format!("/api/v1/runs/{}", uuid::Uuid::new_v4()))),
        http.get(url("/api/v1/audit-logs"))
            .header("x-organization-id", org.to_string())
            .query(&[
                ("start_time", from.as_str()),
                ("end_time", to.as_str()),
                ("operations", "delete_runs"),
            ]),
        http.get(url("/api/v1/examples"))
            .query(&[("as_of", to.as_str()), ("metadata", r#"{"user_id":"u-1"}"#)]),
        http.get(url("/api/v1/examples"))
            .query(&[("filter", r#"has(metadata, '{"user_id": "u-1"}')"#)]),
        http.delete(url("/api/v1/examples"))
            .query(&[("example_ids", example.to_string())]),
        http.post(url("/v1/platform/datasets/examples/delete"))
            .json(&json!({"example_ids": [example], "hard_delete": true})),
        http.post(url("/api/v2/runs/query"))
            .json(&json!({"project_ids": [session], "min_start_time": from})),
        http.post(url("/api/v1/runs/query")).json(&json!({"limit": 0})),
        http.post(url("/api/v2/traces/query"))
            .json(&json!({"trace_ids": [run]})),
    ];
    for call in calls {
        call.header("x-api-key", &key)
            .send()
            .await
            .expect("the simulator answers");
    }
    let exchanges = sim.sim.exchanges().clone();
    let mut problems = BTreeSet::new();
    for x in &exchanges {
        for e in contract.response_errors(x) {
            problems.insert(format!("{} {} → {}: {e}", x.method, x.path, x.status));
        }
    }
    assert!(
        problems.is_empty(),
        "{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
    let statuses: Vec<u16> = exchanges.iter().map(|x| x.status).collect();
    assert_eq!(
        statuses,
        [200, 404, 200, 200, 200, 200, 200, 200, 422, 422],
        "{exchanges:#?}"
    );
}
