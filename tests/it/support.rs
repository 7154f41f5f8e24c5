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

/// The last lines of the logs of the workers started by the test whose names start with `prefix`
/// (`World::log_path`), for the message of a test that failed waiting for them: CI keeps only the
/// test's output.
pub fn log_tails(prefix: &str) -> String {
    const LINES: usize = 40;
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return String::new();
    };
    let mut logs: Vec<_> = (dir.flatten().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(&format!("{prefix}.")) && name.ends_with(".log")
        })
        .collect();
    logs.sort();
    let mut out = String::new();
    for path in logs {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out += &format!("\n--- the last lines of {} ---\n", path.display());
        for line in &lines[lines.len().saturating_sub(LINES)..] {
            out += &without_colours(line);
            out.push('\n');
        }
    }
    out
}

/// `line` without its ANSI colour sequences.
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn log_tails_are_the_last_lines_of_the_test_s_own_worker_logs_without_colours() {
    let prefix = unique("t");
    let dir = std::env::temp_dir();
    let lines: String = (0..50).map(|i| format!("\u{1b}[2mline\u{1b}[0m {i}\n")).collect();
    std::fs::write(dir.join(format!("{prefix}.intake.log")), lines).unwrap();
    std::fs::write(dir.join(format!("{prefix}0.other.log")), "another test's\n").unwrap();
    let tails = log_tails(&prefix);
    assert!(tails.contains(&format!("{prefix}.intake.log")), "{tails}");
    assert!(tails.contains("line 10\n") && tails.contains("line 49\n"), "{tails}");
    assert!(!tails.contains("line 9\n"), "only the last 40 lines: {tails}");
    assert!(
        !tails.contains('\u{1b}') && !tails.contains("another test's"),
        "{tails}"
    );
    for name in [format!("{prefix}.intake.log"), format!("{prefix}0.other.log")] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
}
