//! The chaos suite's input: requests over two workspaces and many projects, each with what its
//! terminal events must say. Traces are made in the simulator first, so verification is real.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use uuid::Uuid;

use crate::intake::Lcg;
use crate::world::{Record, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Trace ids named in a project given by id.
    Explicit,
    /// A metadata selector, scoped to a project or not.
    Selector,
    /// Trace ids in a project the workspace does not have: `deletion-failed`, `unknown_session`.
    UnknownSession,
    /// Truncated JSON: dead-lettered.
    Invalid,
}

pub struct Request {
    pub id: String,
    pub kind: Kind,
    /// Index into the plan's workspaces.
    pub ws: usize,
    /// Project → the trace ids this request must get deleted there.
    pub ids: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// Ids the simulator never deletes: they must end in `deletion-failed`, `still_present`.
    pub never: BTreeSet<Uuid>,
    /// Dataset examples of a selector's subject, or made from an explicit request's trace: they
    /// must end nulled in every version.
    pub examples: Vec<Uuid>,
}

pub struct Plan {
    /// (workspace id, its alias in the worker's config, its projects).
    pub workspaces: Vec<(Uuid, &'static str, Vec<Uuid>)>,
    /// A project that answers 403 for a while: its ids may end in `forbidden` instead.
    pub forbidden: Option<Uuid>,
    pub requests: Vec<Request>,
    pub records: Vec<Record>,
}

/// `n` requests: about 1% invalid, 0.5% naming an unknown project, 5% metadata selectors (a fifth
/// of them unscoped; half of them finding their subject in child runs only; half of them with a
/// dataset example of their subject), the rest explicit; 2% of the explicit ones hold a trace never
/// deleted, and 2% have a dataset example made from their first trace.
pub fn plan(world: &World, workspaces: Vec<(Uuid, &'static str, Vec<Uuid>)>, n: usize, seed: u64) -> Plan {
    let mut rng = Lcg(seed);
    let mut requests = Vec::with_capacity(n);
    let mut records = Vec::with_capacity(n);
    let mut state = world.sim.state();
    for i in 0..n {
        let ws = rng.next(workspaces.len() as u64) as usize;
        let (ws_id, alias, sessions) = &workspaces[ws];
        let session = sessions[rng.next(sessions.len() as u64) as usize];
        let id = format!("c-{i}");
        let roll = rng.next(1000);
        let kind = match roll {
            0..10 => Kind::Invalid,
            10..15 => Kind::UnknownSession,
            15..65 => Kind::Selector,
            _ => Kind::Explicit,
        };
        let traces = 1 + rng.next(3) as usize;
        let subject = format!("subject-{i}-");
        // Half the selectors' subjects are in child runs only: found through the tree filter.
        let children_only = kind == Kind::Selector && rng.next(2) == 0;
        let metadata = match kind {
            Kind::Selector => {
                json!([{"key": "subject", "prefix": subject, "distinct": 1, "children_only": children_only}])
            }
            _ => json!([]),
        };
        let made = match kind {
            Kind::UnknownSession | Kind::Invalid => (0..traces).map(|_| Uuid::new_v4()).collect(),
            Kind::Explicit | Kind::Selector => {
                let gen = json!({"session_id": session, "traces": traces, "runs_per_trace": 1 + usize::from(children_only),
                                 "metadata": metadata, "return_ids": true});
                state.generate(*ws_id, serde_json::from_value(gen).unwrap()).unwrap().1
            }
        };
        let mut never = BTreeSet::new();
        if kind == Kind::Explicit && rng.next(50) == 0 {
            never.insert(made[0]);
            state.never_traces.insert(made[0]);
        }
        let mut examples = Vec::new();
        if kind == Kind::Selector && rng.next(2) == 0 {
            let e = json!({"dataset_id": Uuid::new_v4(), "inputs": {"q": subject}, "metadata": {"subject": format!("{subject}0")}});
            examples.push(state.add_example(*ws_id, serde_json::from_value(e).unwrap()).unwrap());
        }
        if kind == Kind::Explicit && rng.next(50) == 0 {
            let e = json!({"dataset_id": Uuid::new_v4(), "inputs": {"q": subject}, "source_trace_id": made[0]});
            examples.push(state.add_example(*ws_id, serde_json::from_value(e).unwrap()).unwrap());
        }
        let target = match kind {
            Kind::Selector if roll < 25 => json!({"metadata": {"subject": format!("{subject}0")}}),
            Kind::Selector => json!({"session_id": session, "metadata": {"subject": format!("{subject}0")}}),
            Kind::UnknownSession => json!({"session_id": Uuid::new_v4(), "trace_ids": made}),
            _ => json!({"session_id": session, "trace_ids": made}),
        };
        let mut data = json!({"request_id": id, "targets": [target]});
        if ws > 0 {
            data["workspace"] = json!(alias);
        }
        let mut record = Record::event(&data);
        if kind == Kind::Invalid {
            record.payload.truncate(record.payload.len() / 2);
        }
        let target_session = match kind {
            Kind::UnknownSession => data["targets"][0]["session_id"].as_str().unwrap().parse().unwrap(),
            _ => session,
        };
        requests.push(Request {
            id,
            kind,
            ws,
            ids: BTreeMap::from([(target_session, made.into_iter().collect())]),
            never,
            examples,
        });
        records.push(record);
    }
    drop(state);
    Plan {
        workspaces,
        forbidden: None,
        requests,
        records,
    }
}
