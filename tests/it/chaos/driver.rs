//! The chaos driver: worker replicas as processes it can SIGKILL, and faults it turns on and off
//! at random: broker and API outages, black holes, resets and slow links through the proxies,
//! 429 storms and 5xx bursts in the simulator, and faults of one workspace or project: a key
//! LangSmith refuses for a while, a workspace unreachable for a while, a project answering 403.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use langsmith_sim::faults::{Class, FaultSpec, RateLimit};
use langsmith_sim::Sim;

use uuid::Uuid;

use crate::intake::Lcg;
use crate::proxy::{Mode, Proxy};
use crate::world::{Worker, World};

/// Kinds of fault `Chaos::fault` knows.
const FAULTS: u64 = 16;

const API: [Class; 4] = [Class::Delete, Class::Query, Class::QueryV2, Class::Sessions];

/// Worker processes by role; a killed one is started again under a new log name.
pub struct Replicas {
    extra: String,
    live: Mutex<Vec<(String, Worker)>>,
    started: Mutex<usize>,
}

impl Replicas {
    pub fn start(world: &World, extra: &str, roles: &[&str]) -> Replicas {
        let r = Replicas {
            extra: extra.to_owned(),
            live: Mutex::new(Vec::new()),
            started: Mutex::new(0),
        };
        for role in roles {
            r.spawn(world, role);
        }
        r
    }

    fn spawn(&self, world: &World, role: &str) {
        let n = {
            let mut s = self.started.lock().unwrap();
            *s += 1;
            *s
        };
        let child = world.spawn_worker(&self.extra, &format!("{role}-{n}"), role);
        self.live.lock().unwrap().push((role.to_owned(), child));
    }

    /// SIGKILLs replica `i` (mod the count) and starts a new one of its role; returns the role.
    fn kill_and_replace(&self, world: &World, i: usize) -> String {
        let (role, mut child) = {
            let mut live = self.live.lock().unwrap();
            let at = i % live.len();
            live.remove(at)
        };
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        self.spawn(world, &role);
        role
    }

    /// Stops every replica with SIGTERM; each must exit cleanly.
    pub fn stop_all(&self) {
        for (_, child) in self.live.lock().unwrap().iter_mut() {
            child.terminate();
        }
    }

    pub fn started(&self) -> usize {
        *self.started.lock().unwrap()
    }
}

/// The simulator's limits for the run: above what two replicas send, so 429s come from storms.
pub fn calm(sim: &Sim) {
    let mut faults = sim.faults();
    for (class, requests) in [
        (Class::Delete, 500),
        (Class::Query, 200),
        (Class::QueryNarrow, 200),
        (Class::QueryWide, 200),
        (Class::QueryV2, 1000),
        (Class::Sessions, 500),
    ] {
        let spec = FaultSpec {
            rate_limit: Some(RateLimit {
                requests,
                window_ms: 1000,
                retry_after: false,
                plain_body: false,
            }),
            ..Default::default()
        };
        faults.set(class, spec);
    }
}

pub struct Chaos<'a> {
    pub world: &'a World,
    pub replicas: &'a Replicas,
    pub broker: &'a Proxy,
    pub api: &'a Proxy,
    pub sim: &'a Sim,
    /// The workspace whose key is refused for a while, and the key.
    pub refused: (Uuid, String),
    /// The proxy before the workspace that becomes unreachable for a while.
    pub unreachable: &'a Proxy,
    /// The project that answers 403 for a while.
    pub forbidden: Uuid,
}

impl Chaos<'_> {
    /// Faults for `seconds`, and until every kind ran once (the long ones may take longer than
    /// `seconds` together): every kind in a seeded random order, over and over, with one long
    /// outage of the broker and one of the API (`long` each) among them; meanwhile a replica is
    /// SIGKILLed every 4 to 12 s. Then everything is healed. Returns how often each fault ran.
    pub async fn run(&self, seconds: u64, long: Duration, seed: u64) -> BTreeMap<&'static str, u64> {
        let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let mut rng = Lcg(seed);
        let mut kill_rng = Lcg(seed ^ 0xdead);
        let faults = async {
            let mut counts = BTreeMap::new();
            let mut order: Vec<u64> = Vec::new();
            // The first round is a permutation of every kind.
            let mut runs = 0;
            while runs < FAULTS || tokio::time::Instant::now() < end {
                if order.is_empty() {
                    order = (0..FAULTS).collect();
                    for i in (1..order.len()).rev() {
                        order.swap(i, rng.next(i as u64 + 1) as usize);
                    }
                }
                let span = Duration::from_millis(2000 + rng.next(4000));
                let what = self.fault(order.pop().unwrap_or(0), span, long).await;
                *counts.entry(what).or_default() += 1;
                runs += 1;
                tokio::time::sleep(Duration::from_millis(500 + rng.next(1500))).await;
            }
            counts
        };
        let kills = async {
            let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
            loop {
                let next = tokio::time::Instant::now() + Duration::from_millis(4000 + kill_rng.next(8000));
                if next >= end {
                    return counts;
                }
                tokio::time::sleep_until(next).await;
                let role = self.replicas.kill_and_replace(self.world, kill_rng.next(4) as usize);
                let what = if role == "intake" {
                    "SIGKILL intake"
                } else {
                    "SIGKILL verifier"
                };
                *counts.entry(what).or_default() += 1;
            }
        };
        let (mut counts, kills) = tokio::join!(faults, kills);
        counts.extend(kills);
        self.heal();
        counts
    }

    async fn fault(&self, which: u64, span: Duration, long: Duration) -> &'static str {
        match which {
            0 => {
                self.cut(self.broker, Mode::Refuse, long).await;
                "broker outage (long)"
            }
            1 => {
                self.cut(self.api, Mode::Refuse, long).await;
                "API outage (long)"
            }
            2 => {
                self.cut(self.broker, Mode::Refuse, span).await;
                "broker outage"
            }
            3 => {
                self.cut(self.broker, Mode::Blackhole, span).await;
                "broker black hole"
            }
            4 => {
                self.broker.reset_all();
                "broker connections reset"
            }
            5 => {
                self.cut(self.broker, Mode::Delay(Duration::from_millis(50)), span)
                    .await;
                "broker slow (50 ms per chunk)"
            }
            6 => {
                self.cut(self.api, Mode::Refuse, span).await;
                "API outage"
            }
            7 => {
                self.cut(self.api, Mode::Blackhole, span).await;
                "API black hole"
            }
            8 => {
                self.api.reset_all();
                "API connections reset"
            }
            9 => {
                self.cut(self.api, Mode::Delay(Duration::from_millis(400)), span).await;
                "API slow (400 ms per chunk)"
            }
            10 => {
                self.storm(span, true).await;
                "429 storm with Retry-After"
            }
            11 => {
                self.storm(span, false).await;
                "429 storm without Retry-After"
            }
            12 => {
                self.burst(span, [500, 502, 503][(span.as_millis() % 3) as usize]).await;
                "5xx burst"
            }
            13 => {
                self.sim.state().keys.remove(&self.refused.1);
                tokio::time::sleep(long).await;
                self.accept_key();
                "a workspace's key refused (long)"
            }
            14 => {
                self.cut(self.unreachable, Mode::Blackhole, long).await;
                "a workspace unreachable (long)"
            }
            _ => {
                self.sim.behaviour().forbidden_projects = vec![self.forbidden];
                tokio::time::sleep(long).await;
                self.sim.behaviour().forbidden_projects.clear();
                "a project answering 403 (long)"
            }
        }
    }

    /// Binds the refused workspace's key again.
    fn accept_key(&self) {
        let (id, key) = self.refused.clone();
        let bind = serde_json::json!({"id": id, "name": "refused-for-a-while", "api_keys": [key]});
        self.sim
            .state()
            .create_workspace(serde_json::from_value(bind).unwrap())
            .expect("the key binds again");
    }

    async fn cut(&self, proxy: &Proxy, mode: Mode, span: Duration) {
        proxy.set(mode);
        tokio::time::sleep(span).await;
        proxy.set(Mode::Pass);
    }

    /// Two requests a second per class and key, with or without `Retry-After`.
    async fn storm(&self, span: Duration, retry_after: bool) {
        for class in API {
            let limit = RateLimit {
                requests: 2,
                window_ms: 1000,
                retry_after,
                plain_body: !retry_after,
            };
            self.sim.faults().set(
                class,
                FaultSpec {
                    rate_limit: Some(limit),
                    ..Default::default()
                },
            );
        }
        tokio::time::sleep(span).await;
        calm(self.sim);
    }

    /// Half of all requests answered with `status`.
    async fn burst(&self, span: Duration, status: u16) {
        for class in API {
            let mut faults = self.sim.faults();
            let mut spec = faults.specs()[&class].clone();
            spec.error_ratio = 0.5;
            spec.error_status = Some(status);
            faults.set(class, spec);
        }
        tokio::time::sleep(span).await;
        calm(self.sim);
    }

    fn heal(&self) {
        self.broker.set(Mode::Pass);
        self.api.set(Mode::Pass);
        self.unreachable.set(Mode::Pass);
        self.sim.behaviour().forbidden_projects.clear();
        self.accept_key();
        calm(self.sim);
    }
}
