//! Coalesced discovery, per workspace: selectors waiting to be searched at the same time are
//! searched together, in rounds. A round takes every selector waiting when it starts and lists the
//! workspace's projects once for those that name none (the list is read after each of them asked).
//! It groups the selectors that search the same projects with the same `root_only`, at most
//! [`MAX_TOGETHER`] and [`MAX_FILTER`] characters of filter to a group, and searches its groups at
//! the same time. Each group is one v2 query (`api/together.rs`) whose pages are shared out to the
//! selectors as they come; the next page is fetched once every selector given a share of the last
//! one asks for more, as a selector searched alone fetches its next page once it has handed the last
//! one on. The next round starts when the last one is over or waits for its selectors (which may
//! take until the in-flight bound has room): the selectors that ask meanwhile share it. A selector
//! alone in its group is searched alone, in the round. A selector whose group's query is refused or
//! finds a run it cannot share out, and every selector of an install without v2
//! (`verifier.query_api = "v1"`), is searched alone by its own task, as before.

use std::sync::Arc;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::api::{Clients, Found, LangSmith, Refused, Roots, Search, Share};
use crate::config::QueryApi;

/// Selectors searched together at most: their `or` is one filter expression.
const MAX_TOGETHER: usize = 50;
/// Characters of the `or` of a group's expressions at most.
const MAX_FILTER: usize = 8_000;

/// Groups of a round reading and sharing out a page at once. Each holds its page (about 2 MiB for
/// 1,000 runs with their metadata): with all 50 of the memory benchmark's at once the intake
/// peaked at 165-197 MiB, with 16 at 134-150 MiB, and took 25 s instead of 31-33 s
/// (`scripts/bench memory-wide`). A group waiting for its selectors gives its slot back.
const SEARCHING: usize = 16;

/// What a selector hears from its round.
enum Heard {
    /// A page, and whether it was the query's last.
    Found(Found, bool),
    Refused(Refused),
    /// Search alone (from the start).
    Alone,
}

struct Ask {
    /// The project the selector names, if it names one (else: every project).
    scope: Option<Uuid>,
    search: Search,
    heard: mpsc::Sender<Heard>,
    /// Told each time the selector asks for its next page.
    ready: Arc<Notify>,
}

impl Ask {
    /// Returns once the selector asks for more, or is gone.
    async fn asks_again(&self) {
        tokio::select! {
            () = self.ready.notified() => {}
            () = self.heard.closed() => {}
        }
    }
}

/// A workspace's discovery rounds.
#[derive(Clone)]
pub struct Discovery(mpsc::UnboundedSender<Ask>);

impl Discovery {
    /// Starts the rounds of workspace `alias` (a task, for as long as a handle lives). A round takes
    /// every ask waiting when it starts; the next starts once it waits for its selectors to ask for
    /// more (which may take until the in-flight bound has room) or is over.
    pub fn spawn(clients: Clients, alias: String) -> Discovery {
        let (tx, mut rx) = mpsc::unbounded_channel::<Ask>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut asks = vec![first];
                while let Ok(more) = rx.try_recv() {
                    asks.push(more);
                }
                let idle = Arc::new(Notify::new());
                let (clients, alias, waits) = (clients.clone(), alias.clone(), idle.clone());
                tokio::spawn(async move {
                    round(&clients, &alias, asks, &waits).await;
                    waits.notify_one();
                });
                idle.notified().await;
            }
        });
        Discovery(tx)
    }

    /// The traces `search` finds in the `scope` project (or every project), page by page: through
    /// the next round (v2), or alone.
    pub fn find<'a>(&self, api: &'a LangSmith, how: QueryApi, scope: Option<Uuid>, search: Search) -> Matches<'a> {
        let ready = Arc::new(Notify::new());
        let heard = (how == QueryApi::V2).then(|| {
            let (tx, rx) = mpsc::channel(1);
            let ask = Ask {
                scope,
                search: search.clone(),
                heard: tx,
                ready: ready.clone(),
            };
            let _ = self.0.send(ask);
            rx
        });
        Matches {
            api,
            how,
            scope,
            search,
            heard,
            ready,
            told: false,
            ended: false,
            alone: None,
        }
    }
}

/// Searches a round's asks, its groups at the same time.
async fn round(clients: &Clients, alias: &str, asks: Vec<Ask>, idle: &Arc<Notify>) {
    let api = &clients[alias];
    let mut every: Option<Arc<[Uuid]>> = None;
    if asks.iter().any(|a| a.scope.is_none()) {
        match api.all_sessions().await {
            Ok(all) => every = Some(all.into()),
            Err(a) => {
                for ask in asks.iter().filter(|a| a.scope.is_none()) {
                    let _ = ask.heard.send(Heard::Refused(a.clone())).await;
                }
            }
        }
    }
    let asks = asks.into_iter().filter_map(|ask| {
        let sessions = match ask.scope {
            Some(project) => Arc::from([project]),
            None => every.clone()?,
        };
        Some((sessions, ask))
    });
    let groups = groups(asks.collect());
    tracing::debug!(workspace = api.alias(), groups = groups.len(), "a discovery round");
    let mut searching = tokio::task::JoinSet::new();
    let pace = Arc::new(Pace {
        idle: idle.clone(),
        slots: Arc::new(Semaphore::new(SEARCHING)),
    });
    for (sessions, group) in groups {
        let (clients, alias, pace) = (clients.clone(), alias.to_owned(), pace.clone());
        searching.spawn(async move {
            let mut slot = pace.slots.clone().acquire_owned().await.ok();
            together(&clients[&alias], sessions, group, &pace, &mut slot).await
        });
    }
    while searching.join_next().await.is_some() {}
}

/// The asks of a round in groups searched together (the projects each group searches), in the
/// order they came.
fn groups(asks: Vec<(Arc<[Uuid]>, Ask)>) -> Vec<(Arc<[Uuid]>, Vec<Ask>)> {
    let mut groups: Vec<(Arc<[Uuid]>, usize, Vec<Ask>)> = Vec::new();
    for (sessions, ask) in asks {
        let len = ask.search.expr.len() + 2;
        let fits = |(s, chars, g): &&mut (Arc<[Uuid]>, usize, Vec<Ask>)| {
            g.len() < MAX_TOGETHER
                && chars + len <= MAX_FILTER
                && g[0].search.root_only == ask.search.root_only
                && *s == sessions
        };
        match groups.iter_mut().find(fits) {
            Some((_, chars, g)) => {
                *chars += len;
                g.push(ask);
            }
            None => groups.push((sessions, len, vec![ask])),
        }
    }
    groups.into_iter().map(|(s, _, g)| (s, g)).collect()
}

/// Searches a group together, and tells each selector what is its. The next page is fetched
/// once every selector told something has asked for more.
async fn together(api: &LangSmith, sessions: Arc<[Uuid]>, group: Vec<Ask>, pace: &Pace, slot: &mut Slot) {
    if let [ask] = &group[..] {
        return alone(api, sessions, ask, pace, slot).await;
    }
    let searches: Vec<Search> = group.iter().map(|a| a.search.clone()).collect();
    let mut query = api.together(sessions, &searches);
    let alone = |why: &str| {
        tracing::warn!(
            workspace = api.alias(),
            selectors = group.len(),
            "{why}: each is searched alone"
        );
        group.iter().map(|ask| (ask, Heard::Alone)).collect::<Vec<_>>()
    };
    loop {
        let (told, last) = match query.next().await {
            Ok(None) => return,
            Ok(Some(Share::Each(each))) => {
                let last = !query.more();
                let told = (group.iter().zip(each))
                    .filter(|(_, traces)| !traces.is_empty())
                    .map(|(ask, traces)| (ask, Heard::Found(Found::Traces(traces), last)))
                    .collect();
                (told, last)
            }
            Ok(Some(Share::Forbidden(p))) => {
                let last = !query.more();
                let told = (group.iter()).map(|ask| (ask, Heard::Found(Found::Forbidden(p), last)));
                (told.collect(), last)
            }
            Ok(Some(Share::Unclaimed)) => (
                alone("a run matched selectors searched together, but no selector's pairs as written"),
                true,
            ),
            Err(a) => (
                alone(&format!(
                    "LangSmith answered HTTP {} to selectors searched together",
                    a.status.as_u16()
                )),
                true,
            ),
        };
        tell_all(told, !last, pace, slot).await;
        if last {
            return;
        }
    }
}

/// What the groups of a round share: the round's idle signal, and the slots of the groups
/// searching at once.
struct Pace {
    idle: Arc<Notify>,
    slots: Arc<Semaphore>,
}

/// A group's slot: held while it reads a page and shares it out, given back while it waits for
/// its selectors (which may wait for room in the in-flight bound meanwhile).
type Slot = Option<OwnedSemaphorePermit>;

/// Tells each selector its news; then, unless it was the last (`more` is false), says the round is
/// idle and waits, without its slot, until each has asked for more (or is gone).
async fn tell_all(told: Vec<(&Ask, Heard)>, more: bool, pace: &Pace, slot: &mut Slot) {
    let mut waiting = Vec::new();
    for (ask, heard) in told {
        if ask.heard.send(heard).await.is_ok() {
            waiting.push(ask);
        }
    }
    if !more {
        return;
    }
    pace.idle.notify_one();
    *slot = None;
    for ask in waiting {
        ask.asks_again().await;
    }
    *slot = pace.slots.clone().acquire_owned().await.ok();
}

/// Searches a selector alone in its round (the asks made meanwhile wait for the next one, and
/// are searched together), and tells it what it finds.
async fn alone(api: &LangSmith, sessions: Arc<[Uuid]>, ask: &Ask, pace: &Pace, slot: &mut Slot) {
    let mut roots = api.root_traces(QueryApi::V2, sessions, ask.search.clone());
    loop {
        let (heard, last) = match roots.next().await {
            Ok(None) => return,
            Ok(Some(found)) => {
                let last = !roots.more();
                (Heard::Found(found, last), last)
            }
            Err(a) => (Heard::Refused(a), true),
        };
        tell_all(vec![(ask, heard)], !last, pace, slot).await;
        if last {
            return;
        }
    }
}

/// A selector's matches: heard from the round it joined, or searched alone.
pub struct Matches<'a> {
    api: &'a LangSmith,
    how: QueryApi,
    scope: Option<Uuid>,
    search: Search,
    heard: Option<mpsc::Receiver<Heard>>,
    ready: Arc<Notify>,
    /// Whether it asked already: each later call asks its round for more.
    told: bool,
    /// Whether it heard the last page of its query.
    ended: bool,
    alone: Option<Roots<'a>>,
}

impl Matches<'_> {
    /// Whether a page may follow.
    pub fn more(&self) -> bool {
        match (&self.alone, &self.heard) {
            (Some(roots), _) => roots.more(),
            (None, Some(heard)) => !(self.ended || heard.is_closed() && heard.is_empty()),
            (None, None) => true,
        }
    }

    /// The next page, or `None` when every session has been searched.
    pub async fn next(&mut self) -> Result<Option<Found>, Refused> {
        loop {
            if let Some(roots) = &mut self.alone {
                return roots.next().await;
            }
            let heard = match &mut self.heard {
                Some(heard) => {
                    if std::mem::replace(&mut self.told, true) {
                        self.ready.notify_one();
                    }
                    heard.recv().await
                }
                None => Some(Heard::Alone),
            };
            match heard {
                None => return Ok(None),
                Some(Heard::Found(found, last)) => {
                    self.ended = last;
                    return Ok(Some(found));
                }
                Some(Heard::Refused(a)) => return Err(a),
                Some(Heard::Alone) => {
                    self.heard = None;
                    let sessions: Arc<[Uuid]> = match self.scope {
                        Some(project) => Arc::from([project]),
                        None => self.api.all_sessions().await?.into(),
                    };
                    self.alone = Some((self.api).root_traces(self.how, sessions, self.search.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(root_only: bool, expr_len: usize) -> Ask {
        let search = Search {
            pairs: Vec::new(),
            expr: "x".repeat(expr_len),
            root_only,
            start: chrono::Utc::now(),
            end: None,
        };
        Ask {
            scope: None,
            search,
            heard: mpsc::channel(1).0,
            ready: Arc::default(),
        }
    }

    #[test]
    fn a_group_searches_one_set_of_projects_one_way_within_its_bounds() {
        let (all, one): (Arc<[Uuid]>, Arc<[Uuid]>) = ([Uuid::new_v4(), Uuid::new_v4()].into(), [Uuid::new_v4()].into());
        let mut asks = vec![
            (all.clone(), ask(false, 10)),
            (one.clone(), ask(false, 10)),
            (all.clone(), ask(true, 10)),
            (all.clone(), ask(false, 10)),
        ];
        asks.extend((0..MAX_TOGETHER).map(|_| (one.clone(), ask(false, 10))));
        let sizes: Vec<(usize, bool, usize)> = groups(asks)
            .iter()
            .map(|(s, g)| (s.len(), g[0].search.root_only, g.len()))
            .collect();
        assert_eq!(
            sizes,
            [(2, false, 2), (1, false, MAX_TOGETHER), (2, true, 1), (1, false, 1)]
        );

        let long = MAX_FILTER / 3;
        let asks = (0..4).map(|_| (all.clone(), ask(false, long))).collect();
        let sizes: Vec<usize> = groups(asks).iter().map(|(_, g)| g.len()).collect();
        assert_eq!(sizes, [2, 2], "at most {MAX_FILTER} characters of filter to a group");
    }
}
