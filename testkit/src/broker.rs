//! A Tansu broker of the caller's own, on a free loopback port, started and stopped by
//! `scripts/kafka-broker`. It stops when dropped or when the process exits (the script watches our
//! pid). A broker that cannot be had fails, saying how to get it.

use std::path::PathBuf;
use std::process::Command;

pub struct Broker {
    /// Where clients connect: the broker, or the proxy it advertises.
    pub bootstrap: String,
    /// The broker's own listener.
    pub listener: String,
    /// The broker's process, for CPU readings.
    pub pid: u32,
    /// A directory of the broker's own (its pid file, and what the caller keeps beside it),
    /// removed when the broker stops.
    pub dir: PathBuf,
}

impl Broker {
    /// Starts a broker; with `advertised`, clients are sent there (a proxy in front).
    pub fn start(advertised: Option<&str>) -> Broker {
        let dir = std::env::temp_dir().join(crate::unique("erasure-broker"));
        std::fs::create_dir_all(&dir).expect("create the broker's directory");
        let mut cmd = Command::new(script());
        cmd.arg("start")
            .arg(&dir)
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
        let pid = std::fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("the broker's pid file");
        Broker {
            bootstrap: advertised.map_or_else(|| listener.clone(), str::to_owned),
            listener,
            pid,
            dir,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-broker")
}
