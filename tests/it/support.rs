//! Test helpers: one Tansu broker and one LangSmith simulator per test binary, and per-test topics,
//! consumer groups and simulator workspaces so tests never share state.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use langsmith_sim::store::NewWorkspace;
use langsmith_sim::Sim;
use uuid::Uuid;

pub use erasure_testkit::{drop_consumer, reader_from_start, unique, Broker, Worker};

/// The broker for this test binary, started on first use on a free loopback port.
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(|| Broker::start(None))
}

/// The simulator for this test binary, on its own runtime thread so it outlives each test's runtime.
pub struct Simulator {
    pub sim: Arc<Sim>,
    pub base_url: String,
}

pub fn simulator() -> &'static Simulator {
    static SIM: OnceLock<Simulator> = OnceLock::new();
    SIM.get_or_init(private_simulator)
}

/// A simulator of the test's own, for tests that change faults or read global counters.
pub fn private_simulator() -> Simulator {
    let sim = Sim::new(7);
    sim.set_schedule(langsmith_sim::window::Schedule::Manual);
    let addr = sim.clone().spawn_on_thread().expect("simulator binds a port");
    Simulator {
        sim,
        base_url: format!("http://{addr}"),
    }
}

impl Simulator {
    /// A fresh workspace with its own key, so tests sharing the simulator never see each other's data.
    pub fn workspace(&self) -> (Uuid, String) {
        let key = format!("lsv2_pt_{}", Uuid::new_v4().simple());
        let new = NewWorkspace {
            id: None,
            name: unique("ws"),
            org_id: None,
            api_keys: vec![key.clone()],
            org_scoped_keys: vec![],
        };
        (self.sim.state().create_workspace(new).expect("a new key"), key)
    }
}

/// Waits until `cond` holds, failing after `within`.
pub async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A whole number from the environment (a size knob of a test), or `default`.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}"))
    })
}
