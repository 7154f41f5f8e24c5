//! `langsmith-sim`: a faithful stand-in for the LangSmith endpoints `erasure-worker` uses.
//!
//! It follows `shared/langsmith-api.md` (§10 is its checklist): same paths (under `/api/v1` and bare),
//! bodies, status codes and error shapes; several workspaces with their own keys, sessions, runs and
//! examples; deletes that are only *queued* until the simulated deletion window runs; and, under
//! `/_sim/`, an admin API for tests and benchmarks (bulk load, run the window, faults, counters).
#![forbid(unsafe_code)]

pub mod counters;
pub mod faults;
pub mod filter;
mod http;
pub mod model;
pub mod query;
mod rng;
pub mod store;
pub mod window;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use counters::Counters;
use faults::Faults;
use model::DeleteTarget;
use store::{State, WindowReport};
use uuid::Uuid;
use window::Schedule;

/// How `POST /runs/delete` answers, where LangSmith's sources disagree or plans differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// 202 `{"message":"Run deletes queued"}` (observed) or, when false, 200 `{}` (the spec).
    pub delete_answers_202: bool,
    /// When false, metadata and time-range deletes answer 403 "bulk run deletes are not enabled".
    pub bulk_deletes_enabled: bool,
    /// Status for more than 1000 trace ids in one call (LangSmith's is unconfirmed).
    pub oversize_status: u16,
    /// Serve the v2 API under `/api/v2/...` (where the official SDK calls it since 2026-07-30).
    pub serve_api_v2: bool,
    /// Serve the v2 API under `/v2/...` (the July 2026 spec's paths).
    pub serve_bare_v2: bool,
    /// Projects whose runs the key may not delete or read (attribute-based access control): their
    /// deletes and queries answer 403.
    pub forbidden_projects: Vec<Uuid>,
    /// Answer v1 `runs/query` (deprecated in the SDKs after 2027-01-31) with `Deprecation` and
    /// `Sunset` headers.
    pub deprecation_headers: bool,
    /// Keep every LangSmith request and answer for contract tests (`/_sim/exchanges`).
    pub record_exchanges: bool,
    /// Trace ids whose delete calls always answer 500 (a poisoned id).
    pub poisoned_traces: Vec<Uuid>,
    /// Example ids whose hard delete calls always answer 500 (a poisoned id).
    pub poisoned_examples: Vec<Uuid>,
    /// Projects deleted since the worker resolved them: their trace deletes answer 404.
    pub gone_projects: Vec<Uuid>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            delete_answers_202: true,
            bulk_deletes_enabled: true,
            oversize_status: 400,
            serve_api_v2: true,
            serve_bare_v2: true,
            forbidden_projects: Vec::new(),
            deprecation_headers: false,
            record_exchanges: false,
            poisoned_traces: Vec::new(),
            poisoned_examples: Vec::new(),
            gone_projects: Vec::new(),
        }
    }
}

/// One LangSmith request and its answer, as recorded for contract tests.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    /// The path as requested (`/api/v1/runs/delete`, `/api/v2/traces/query`), without the query.
    pub path: String,
    pub query: Option<String>,
    /// Whether the request carried `X-Tenant-Id`.
    pub tenant: bool,
    pub request: Option<serde_json::Value>,
    pub status: u16,
    pub response: Option<serde_json::Value>,
}

/// The simulator: state plus the knobs the admin API turns. Share it as `Arc<Sim>`.
pub struct Sim {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    counters: Mutex<Counters>,
    behaviour: Mutex<Behaviour>,
    exchanges: Mutex<Vec<Exchange>>,
    schedule: watch::Sender<Schedule>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    /// A simulator seeded for reproducible ids and faults, with LangSmith's documented rate limits
    /// and the weekly deletion job.
    pub fn new(seed: u64) -> Arc<Sim> {
        Arc::new(Sim {
            state: Mutex::new(State::new(seed)),
            faults: Mutex::new(Faults::new(seed)),
            counters: Mutex::new(Counters::default()),
            behaviour: Mutex::new(Behaviour::default()),
            exchanges: Mutex::default(),
            schedule: watch::Sender::new(Schedule::default()),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        lock(&self.counters)
    }

    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        lock(&self.behaviour)
    }

    /// The exchanges recorded while `Behaviour::record_exchanges` was on, oldest first.
    pub fn exchanges(&self) -> MutexGuard<'_, Vec<Exchange>> {
        lock(&self.exchanges)
    }

    pub fn set_schedule(&self, schedule: Schedule) {
        self.schedule.send_replace(schedule);
    }

    /// Turns every fault off, the documented rate limits included.
    pub fn clear_faults(&self) {
        let mut faults = self.faults();
        for class in faults::Class::ALL {
            faults.set(class, faults::FaultSpec::default());
        }
    }

    /// Runs the deletion job now.
    pub fn run_window(&self) -> WindowReport {
        let report = self.state().run_window();
        let mut c = self.counters();
        c.applied_traces += report.applied_traces;
        c.skipped_traces += report.skipped_traces;
        c.windows_run += 1;
        report
    }

    /// Serves HTTP on `listener` and runs the deletion schedule until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let scheduler = tokio::spawn(run_schedule(self.clone()));
        let result = axum::serve(listener, http::router(self))
            .with_graceful_shutdown(shutdown)
            .await;
        scheduler.abort();
        result
    }

    /// Binds a free loopback port and serves on a thread of its own (one core, its own runtime), so
    /// it outlives any caller's runtime: for test binaries and benchmarks.
    pub fn spawn_on_thread(self: Arc<Self>) -> std::io::Result<SocketAddr> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(tx.send(Err(e))),
            };
            rt.block_on(async move {
                let _ = tx.send(self.spawn().await);
                std::future::pending::<()>().await
            })
        });
        rx.recv().map_err(|_| std::io::Error::other("simulator thread ended"))?
    }

    /// Binds a free loopback port and serves in the background of the current runtime.
    pub async fn spawn(self: Arc<Self>) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(self.serve(listener, std::future::pending()));
        Ok(addr)
    }
}

async fn run_schedule(sim: Arc<Sim>) {
    let mut rx = sim.schedule.subscribe();
    loop {
        let next = rx.borrow_and_update().next_in(chrono::Utc::now());
        let sleep = async {
            match next {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let report = sim.run_window();
                tracing::info!(applied = report.applied_traces, skipped = report.skipped_traces, "deletion window ran");
            }
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

impl Sim {
    /// Every accepted trace-id delete of a workspace: (session, trace ids) per call, in order.
    pub fn delete_calls(&self, workspace: Uuid) -> Vec<(Uuid, Vec<Uuid>)> {
        self.delete_calls_from(workspace, 0).0
    }

    /// The accepted trace-id deletes from entry `from` of the workspace's delete log on, and the
    /// log's length (where the next read starts).
    pub fn delete_calls_from(&self, workspace: Uuid, from: usize) -> (Vec<(Uuid, Vec<Uuid>)>, usize) {
        let state = self.state();
        let Some(ws) = state.workspaces.get(&workspace) else {
            return (Vec::new(), 0);
        };
        let calls = ws
            .delete_log
            .iter()
            .skip(from)
            .filter_map(|t| match t {
                DeleteTarget::Traces { session_id, trace_ids } => Some((*session_id, trace_ids.clone())),
                DeleteTarget::Metadata { .. } => None,
            })
            .collect();
        (calls, ws.delete_log.len())
    }
}
