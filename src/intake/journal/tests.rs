use super::*;

fn ids(n: usize) -> BTreeSet<Uuid> {
    (0..n).map(|_| Uuid::new_v4()).collect()
}

#[test]
fn an_entry_holds_ids_and_the_request_only() {
    let session = Uuid::new_v4();
    let entry = Entry {
        request_id: "r-1".into(),
        target: Some(2),
        traces: BTreeMap::from([(session, ids(2))]),
        ..Entry::default()
    };
    let json: serde_json::Value = serde_json::to_value(&entry).unwrap();
    let fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["request_id", "run", "target", "traces"]);
    assert_eq!(serde_json::from_value::<Entry>(json).unwrap(), entry);
}

#[test]
fn recalled_pages_add_up_per_target_and_project() {
    let (s, first, second, examples) = (Uuid::new_v4(), ids(3), ids(2), ids(4));
    let page = |target, ids: &BTreeSet<Uuid>| Entry {
        request_id: "r".into(),
        target: Some(target),
        traces: BTreeMap::from([(s, ids.clone())]),
        ..Entry::default()
    };
    let mut r = Recalled::default();
    r.add(&page(0, &first));
    r.add(&page(0, &second));
    r.add(&page(1, &first));
    r.add(&Entry {
        request_id: "r".into(),
        examples: examples.iter().copied().collect(),
        ..Entry::default()
    });
    let both: BTreeSet<Uuid> = first.union(&second).copied().collect();
    assert_eq!(r.traces[&0][&s], both);
    assert_eq!(r.traces[&1][&s], first);
    assert_eq!(r.examples, examples);
}

fn journal() -> Arc<Journal> {
    let config = Config::parse(
        "[kafka]\nbootstrap = \"127.0.0.1:9\"\n[workspaces.main]\napi_url = \"http://127.0.0.1:1\"\n\
         api_key_env = \"PATH\"\n",
    )
    .unwrap();
    let publisher = Publisher::new(crate::kafka::client_config("127.0.0.1:9")).unwrap();
    Arc::new(Journal::new(&config, publisher))
}

fn ticket(partition: i32, offset: i64) -> Ticket {
    Ticket {
        tp: (0, partition),
        offset,
        generation: 1,
    }
}

/// A run's own records are not kept (a selector's pages would all be held in memory again, as
/// read back), nor parsed past their run; another replica's, and those of a run of this one that
/// has ended, are.
#[test]
fn only_the_records_of_runs_that_are_not_ours_are_kept() {
    let journal = journal();
    let live = Recorder::new(journal.clone(), ticket(0, 7), None, "r-1".into());
    let ended = Recorder::new(journal.clone(), ticket(0, 8), None, "r-2".into());
    let ended_run = ended.run;
    drop(ended);
    let page = |run: Uuid| Entry {
        request_id: "r-1".into(),
        run,
        target: Some(0),
        traces: BTreeMap::from([(Uuid::new_v4(), ids(2))]),
        ..Entry::default()
    };
    let cache = journal.cache(0);
    let ours = |run: &Uuid| cache.own.lock().unwrap().contains(run);
    let parse = |e: &Entry| read::parse(&serde_json::to_vec(e).unwrap(), &ours).unwrap();
    assert_eq!(parse(&page(live.run)), None);
    for e in [page(Uuid::new_v4()), page(ended_run)] {
        assert_eq!(parse(&e), Some(e));
    }
    assert!(read::parse(b"{\"run\": 7}", &ours).is_err());
}

/// A partition that went elsewhere and came back starts a new cache: a run of the old one still
/// going on is not the new one's own, so a replay here reads its records.
#[test]
fn a_run_from_before_the_partition_left_is_not_the_new_cache_s_own() {
    let journal = journal();
    let old = Recorder::new(journal.clone(), ticket(0, 7), None, "r-1".into());
    journal.forget(0);
    let new = Recorder::new(journal.clone(), ticket(0, 7), None, "r-1".into());
    let own = |j: &Journal| j.cache(0).own.lock().unwrap().clone();
    assert_eq!(own(&journal), HashSet::from([new.run]));
    drop(old);
    assert_eq!(own(&journal), HashSet::from([new.run]));
    drop(new);
    assert!(own(&journal).is_empty());
}

/// A run whose partition went elsewhere since its event arrived reads nothing: its pieces are
/// dropped. Reading would make the partition's next cache here and count the run as that cache's
/// own, or drop records below the run's floor, and a replay here would then miss them.
#[tokio::test]
async fn a_run_whose_partition_went_elsewhere_reads_nothing_and_makes_no_cache() {
    let journal = journal();
    let mut old = Recorder::new(journal.clone(), ticket(0, 7), None, "r-1".into());
    journal.forget(0);
    let read = tokio::time::timeout(Duration::from_secs(5), old.recall()).await;
    assert_eq!(
        read.map(std::mem::take),
        Ok(Recalled::default()),
        "no read of the journal"
    );
    assert!(!journal.caches.lock().unwrap().contains_key(&0));
}
