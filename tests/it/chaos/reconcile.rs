//! The reconciler: what the outputs and the simulator say happened to every request of a plan,
//! as counts, and every way that falls short of the contract, as problems.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use langsmith_sim::Sim;
use serde_json::Value;
use uuid::Uuid;

use super::plan::{Kind, Plan, Request};
use crate::world::Out;

/// Per request: ids requested, verified, failed by reason, dead-lettered or not.
#[derive(Default)]
struct Seen {
    requested: HashSet<Uuid>,
    verified: HashSet<Uuid>,
    failed: HashMap<String, HashSet<Uuid>>,
    dead: bool,
}

fn ids(d: &Value) -> impl Iterator<Item = Uuid> + '_ {
    d["trace_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
}

/// Files one output under its request; returns the request's id.
fn note(by: &mut HashMap<String, Seen>, o: &Out) -> Option<String> {
    if o.topic == "dlq" {
        let k = o.key.clone()?;
        by.entry(k.clone()).or_default().dead = true;
        return Some(k);
    }
    let v = o.json();
    let d = &v["data"];
    let r = d["request_id"].as_str()?;
    let s = by.entry(r.to_owned()).or_default();
    match o.topic.as_str() {
        "requested" => s.requested.extend(ids(d)),
        "verified" => s.verified.extend(ids(d)),
        "failed" => s
            .failed
            .entry(d["reason"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .extend(ids(d)),
        _ => {}
    }
    Some(r.to_owned())
}

fn seen(outs: &[Out]) -> HashMap<String, Seen> {
    let mut by = HashMap::new();
    for o in outs {
        note(&mut by, o);
    }
    by
}

fn failed_as<'a>(s: &'a Seen, reason: &str) -> impl Fn(&Uuid) -> bool + 'a {
    let set = s.failed.get(reason);
    move |id| set.is_some_and(|f| f.contains(id))
}

/// The request has its terminal events (the contract's "done"). A selector replayed after its
/// deletes took effect (a replica died between LangSmith accepting them and Kafka acknowledging
/// its deletion-requested events) still names every trace: the resolution journal recalls them.
fn terminal(plan: &Plan, r: &Request, s: &Seen) -> bool {
    match r.kind {
        Kind::Selector if refused_search(plan, s) => true,
        Kind::Invalid => s.dead,
        Kind::UnknownSession => r.ids.values().flatten().all(failed_as(s, "unknown_session")),
        Kind::Explicit | Kind::Selector => {
            let still = failed_as(s, "still_present");
            r.ids.iter().all(|(session, ids)| {
                ids.iter().all(|id| {
                    forbidden(plan, r, *session, s, id)
                        || if r.never.contains(id) {
                            still(id)
                        } else {
                            s.verified.contains(id)
                        }
                })
            })
        }
    }
}

/// A selector whose search of the project answering 403 was refused fails that project alone,
/// naming no ids (it never found them). `reconcile` checks the simulator for the rest.
fn refused_search(plan: &Plan, s: &Seen) -> bool {
    plan.forbidden.is_some() && s.failed.contains_key("forbidden")
}

/// The id is of the project that answered 403 for a while, and failed as `forbidden`: a terminal
/// outcome, whether or not its delete had gone through before. A selector refused the search of
/// that project fails it without naming ids (it never found them).
fn forbidden(plan: &Plan, r: &Request, session: Uuid, s: &Seen, id: &Uuid) -> bool {
    let refused = failed_as(s, "forbidden")(id) || (r.kind == Kind::Selector && s.failed.contains_key("forbidden"));
    plan.forbidden == Some(session) && refused
}

/// Which requests are still open, updated from new outputs only (a big run reads millions).
pub struct Progress {
    by: HashMap<String, Seen>,
    read: usize,
    index: HashMap<String, usize>,
    open: HashSet<usize>,
}

impl Progress {
    pub fn new(plan: &Plan) -> Progress {
        Progress {
            by: HashMap::new(),
            read: 0,
            index: plan
                .requests
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id.clone(), i))
                .collect(),
            open: (0..plan.requests.len()).collect(),
        }
    }

    /// Reads the outputs not read yet; true once every request has its terminal events.
    pub fn done(&mut self, plan: &Plan, outs: &[Out]) -> bool {
        let mut touched = HashSet::new();
        for o in &outs[self.read.min(outs.len())..] {
            touched.extend(note(&mut self.by, o));
        }
        self.read = outs.len();
        for r in touched {
            if let (Some(i), Some(s)) = (self.index.get(&r), self.by.get(&r)) {
                if terminal(plan, &plan.requests[*i], s) {
                    self.open.remove(i);
                }
            }
        }
        self.open.is_empty()
    }

    /// Requests without their terminal events yet.
    pub fn open(&self) -> usize {
        self.open.len()
    }
}

/// Checks every request against the outputs and the simulator; returns the problems and prints
/// the counts.
/// `at`: where each request of the plan landed in the input, (partition, offset).
pub fn reconcile(plan: &Plan, outs: &[Out], sim: &Sim, at: &[(i32, i64)]) -> Vec<String> {
    let by = seen(outs);
    let mut problems = Vec::new();
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut unnamed_selectors = 0;
    let mut refused = 0;
    let state = sim.state();
    let present = |ws: usize, id: &Uuid| state.workspaces[&plan.workspaces[ws].0].traces.contains_key(id);
    let planned: HashSet<&str> = plan.requests.iter().map(|r| r.id.as_str()).collect();
    for (i, r) in plan.requests.iter().enumerate() {
        *kinds.entry(r.kind).or_default() += 1;
        let empty = Seen::default();
        let s = by.get(&r.id).unwrap_or(&empty);
        let all: Vec<&Uuid> = r.ids.values().flatten().collect();
        let other_reasons: Vec<&String> = s
            .failed
            .keys()
            .filter(|k| !matches!((r.kind, k.as_str()), (Kind::UnknownSession, "unknown_session")))
            .filter(|k| k.as_str() != "still_present" || r.never.is_empty())
            // Its ids may be in the project that answered 403, and an unscoped selector searches it.
            .filter(|k| {
                k.as_str() != "forbidden"
                    || !plan
                        .forbidden
                        .is_some_and(|f| r.ids.contains_key(&f) || r.kind == Kind::Selector)
            })
            .collect();
        if !other_reasons.is_empty() {
            let projects: Vec<&Uuid> = r.ids.keys().collect();
            problems.push(format!(
                "{}: {:?} in {projects:?} failed with {other_reasons:?}",
                r.id, r.kind
            ));
        }
        if r.kind != Kind::Invalid && s.dead {
            problems.push(format!("{}: a valid request was dead-lettered", r.id));
        }
        match r.kind {
            Kind::Invalid if !s.dead => problems.push(format!("{}: invalid, never dead-lettered", r.id)),
            Kind::UnknownSession if !all.iter().all(|id| failed_as(s, "unknown_session")(id)) => {
                problems.push(format!("{}: no unknown_session failure for all its ids", r.id))
            }
            Kind::Explicit | Kind::Selector => {
                for (session, id) in r.ids.iter().flat_map(|(s, ids)| ids.iter().map(move |id| (*s, id))) {
                    if forbidden(plan, r, session, s, id) {
                        refused += 1;
                        continue;
                    }
                    let never = r.never.contains(id);
                    if never && !failed_as(s, "still_present")(id) {
                        problems.push(format!("{}: {id} is never deleted but did not fail", r.id));
                    }
                    if never && s.verified.contains(id) {
                        problems.push(format!("{}: {id} verified but never deleted", r.id));
                    }
                    let refused_search = r.kind == Kind::Selector && refused_search(plan, s);
                    unnamed_selectors += usize::from(refused_search && !s.verified.contains(id));
                    if !never && !s.verified.contains(id) && !refused_search {
                        let (p, o) = at.get(i).copied().unwrap_or((-1, -1));
                        let requested = if s.requested.contains(id) {
                            "requested"
                        } else {
                            "never requested"
                        };
                        problems.push(format!(
                            "{}: {id} was not verified ({:?}, {requested}; input {p}@{o})",
                            r.id, r.kind
                        ));
                    }
                    if present(r.ws, id) != never {
                        problems.push(format!("{}: {id} present in the simulator: {}", r.id, !never));
                    }
                }
            }
            _ => {}
        }
    }
    drop(state);
    for k in by.keys().filter(|k| !planned.contains(k.as_str())) {
        problems.push(format!("an output names a request never made: {k}"));
    }
    problems.extend(unsent(plan, sim, &by));
    print_counts(plan, outs, &kinds, sim);
    eprintln!(
        "  selector ids named by no verified event, their search refused by the project answering 403 \
         (checked in the simulator): {unnamed_selectors}; ids failed as forbidden in that project: {refused}"
    );
    problems
}

/// Every valid trace id of a known project reached the delete API in its own project (but those
/// failed as `forbidden`).
fn unsent(plan: &Plan, sim: &Sim, by: &HashMap<String, Seen>) -> Vec<String> {
    let sent: Vec<HashMap<Uuid, HashSet<Uuid>>> = plan
        .workspaces
        .iter()
        .map(|(ws, _, _)| {
            let mut by: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
            for (s, ids) in sim.delete_calls(*ws) {
                by.entry(s).or_default().extend(ids);
            }
            by
        })
        .collect();
    let mut problems = Vec::new();
    for r in plan
        .requests
        .iter()
        .filter(|r| matches!(r.kind, Kind::Explicit | Kind::Selector))
    {
        for (session, ids) in &r.ids {
            let got = sent[r.ws].get(session);
            let empty = Seen::default();
            let seen = by.get(&r.id).unwrap_or(&empty);
            let missing = ids
                .iter()
                .filter(|id| !got.is_some_and(|g| g.contains(id)) && !forbidden(plan, r, *session, seen, id))
                .count();
            if missing > 0 {
                problems.push(format!("{}: {missing} ids never reached the delete API", r.id));
            }
        }
    }
    problems
}

type IdSet = BTreeSet<(String, Uuid)>;

fn print_counts(plan: &Plan, outs: &[Out], kinds: &BTreeMap<Kind, usize>, sim: &Sim) {
    let mut events: BTreeMap<&str, usize> = BTreeMap::new();
    let mut keys: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    // Per topic: ids reported, and the distinct (request, id) pairs among them.
    let mut id_reports: BTreeMap<&str, (usize, IdSet)> = BTreeMap::new();
    for o in outs {
        *events.entry(o.topic.as_str()).or_default() += 1;
        let v = o.json();
        let d = &v["data"];
        // One logical event: the CloudEvents id (stable across replays, distinct between events).
        let key = if o.topic == "dlq" {
            format!("{:?}", o.key)
        } else {
            v["id"].as_str().unwrap_or_default().to_owned()
        };
        keys.entry(o.topic.as_str()).or_default().insert(key);
        let r = d["request_id"].as_str().unwrap_or_default().to_owned();
        let e = id_reports.entry(o.topic.as_str()).or_default();
        for id in ids(d) {
            e.0 += 1;
            e.1.insert((r.clone(), id));
        }
    }
    let wanted: usize = plan
        .requests
        .iter()
        .map(|r| r.ids.values().map(BTreeSet::len).sum::<usize>())
        .sum();
    let calls: usize = plan
        .workspaces
        .iter()
        .map(|(ws, _, _)| sim.delete_calls(*ws).len())
        .sum();
    let c = sim.counters().clone();
    eprintln!("chaos reconciler:");
    eprintln!(
        "  requests: {} ({kinds:?}); trace ids named: {wanted}",
        plan.requests.len()
    );
    for (topic, n) in &events {
        let distinct = keys[topic].len();
        let (idn, idd) = id_reports.get(topic).map_or((0, 0), |(n, set)| (*n, set.len()));
        let ratio = 100.0 * (n - distinct) as f64 / (*n).max(1) as f64;
        eprintln!(
            "  {topic}: {n} events, {} duplicate events ({ratio:.1} %); {idn} id reports for {idd} distinct ids ({} repeats)",
            n - distinct,
            idn - idd
        );
    }
    eprintln!(
        "  delete API: {calls} accepted calls, {} ids; simulator answered {} 429s and {} injected errors",
        c.delete_ids_total, c.rate_limited, c.injected_errors
    );
}
