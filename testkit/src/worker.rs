//! A worker process started by a test or a benchmark.

use std::process::{Child, Command};

/// A worker process, killed if its test ends without stopping it (a failed assertion), so it does
/// not outlive its broker.
pub struct Worker(pub Child);

impl std::ops::Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Worker {
    /// Stops the worker with SIGTERM and checks it exits cleanly.
    pub fn terminate(&mut self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        let status = self.0.wait().unwrap();
        assert!(status.success(), "graceful stop: {status:?}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
