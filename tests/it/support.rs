//! Test helpers: one Tansu broker and one LangSmith simulator per test binary, and per-test topics,
//! consumer groups and simulator workspaces so tests never share state.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use erasure_worker::kafka::client_config;
use langsmith_sim::store::NewWorkspace;
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

pub struct Broker {
    /// Where clients connect: the broker, or the proxy it advertises.
    pub bootstrap: String,
    /// The broker's own listener.
    pub listener: String,
    dir: tempdir::Dir,
}

/// The broker for this test binary, started on first use on a free loopback port.
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(|| start_broker(None))
}

/// A broker of the caller's own; with `advertised`, clients are sent there (a proxy in front). It
/// stops when dropped or when the test binary exits (the script watches our pid). A broker that
/// cannot be had fails the test, saying why.
pub fn start_broker(advertised: Option<&str>) -> Broker {
    let dir = tempdir::Dir::new("broker");
    let mut cmd = Command::new(script());
    cmd.arg("start")
        .arg(&dir.path)
        .env("KAFKA_BROKER_NO_INSTALL", "1")
        .env("KAFKA_BROKER_WATCH_PID", std::process::id().to_string());
    if let Some(a) = advertised {
        cmd.env("KAFKA_BROKER_ADVERTISED", a);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
    assert!(
        out.status.success(),
        "the test broker could not be started (install it with `scripts/kafka-broker install`, \
         or run the whole suite with `scripts/test`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listener = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Broker {
        bootstrap: advertised.map_or_else(|| listener.clone(), str::to_owned),
        listener,
        dir,
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker")
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir.path).status();
    }
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

/// A name no other test in this run uses (topics, groups).
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A reader of partitions `0..partitions` of each topic, from the beginning. Assigned, not
/// subscribed: no group, so no rebalance can make it skip or repeat a partition.
pub fn reader_from_start<T: AsRef<str>>(bootstrap: &str, topics: &[T], partitions: i32) -> StreamConsumer {
    let consumer: StreamConsumer = client_config(bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        for p in 0..partitions {
            tpl.add_partition_offset(topic.as_ref(), p, Offset::Beginning)
                .expect("reader offsets");
        }
    }
    consumer.assign(&tpl).expect("reader assignment");
    consumer
}

/// Drops a consumer off the async runtime: librdkafka's close blocks, and a hang there would not be
/// caught by a tokio timeout (see shared/test-broker.md).
pub async fn drop_consumer(consumer: StreamConsumer) {
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .expect("consumer drop");
}

mod tempdir {
    use std::path::PathBuf;

    /// A directory under the target dir, removed on drop.
    pub struct Dir {
        pub path: PathBuf,
    }

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let path = std::env::temp_dir().join(super::unique(&format!("erasure-{prefix}")));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Dir { path }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
