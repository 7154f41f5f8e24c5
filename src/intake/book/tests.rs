use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::event::SourceRef;
use crate::intake::resolve::{Resolved, Unresolved};

fn request() -> Arc<Request> {
    Arc::new(Request {
        request_id: "r1".into(),
        workspace: "main".into(),
        deadline: Utc::now(),
        targets: vec![],
        source: SourceRef {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            event_id: "e".into(),
            event_source: "s".into(),
        },
    })
}

const KEY: MsgKey = MsgKey {
    tp: (0, 0),
    offset: 5,
    generation: 1,
};

fn ids(n: u128) -> BTreeSet<Uuid> {
    (1..=n).map(Uuid::from_u128).collect()
}

#[test]
fn parts_split_at_max_batch_and_complete_when_every_id_is_accepted() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 0);
    let session = Uuid::from_u128(99);
    let resolved = Resolved {
        sessions: BTreeMap::from([(session, ids(5))]),
        ..Default::default()
    };
    let Resolution { work, now } = book.resolved(KEY, resolved, true, 2, Utc::now());
    assert!(now.is_empty());
    assert_eq!(
        work.iter().map(|(pk, ids)| (pk.part, ids.len())).collect::<Vec<_>>(),
        vec![(0, 2), (1, 2), (2, 1)]
    );
    assert_eq!(book.ids_in_flight(), 5);
    let mut outputs = Vec::new();
    let mut rejected = HashMap::new();
    let why = crate::api::Refusal {
        reason: FailReason::RejectedByApi,
        detail: "HTTP 422".into(),
    };
    rejected.insert(Uuid::from_u128(5), why);
    for (pk, ids) in work {
        let owners = (0..ids.len() as u32).map(|i| (i, pk)).collect();
        outputs.extend(book.batch_done(owners, &answered(ids, rejected.clone())));
    }
    assert_eq!(book.ids_in_flight(), 0);
    let events: Vec<&Output> = outputs.iter().flat_map(|(_, o)| o).collect();
    assert_eq!(events.len(), 3);
    assert!(matches!(events[0], Output::Requested(r) if r.part == 0 && r.parts == 3 && r.trace_ids.len() == 2));
    assert!(
        matches!(events[2], Output::Failed(f) if f.trace_ids == vec![Uuid::from_u128(5)] && f.reason == FailReason::RejectedByApi)
    );
    for _ in 0..2 {
        assert!(!book.published(KEY));
    }
    assert!(book.published(KEY), "done after the third acknowledgement");
    assert_eq!(book.messages(), 0);
}

#[test]
fn failures_and_empty_selectors_publish_at_once() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 0);
    let failure = Unresolved {
        session_id: None,
        trace_ids: vec![Uuid::from_u128(1)],
        reason: FailReason::UnknownSession,
        detail: "no such project".into(),
    };
    let resolved = Resolved {
        failures: vec![failure],
        nothing_found: vec![None],
        ..Default::default()
    };
    let Resolution { work, now } = book.resolved(KEY, resolved, true, 1000, Utc::now());
    assert!(work.is_empty());
    assert!(matches!(&now[0], Output::Failed(f) if f.reason == FailReason::UnknownSession));
    assert!(matches!(&now[1], Output::Verified(v) if v.trace_ids.is_empty()));
    assert!(!book.published(KEY));
    assert!(book.published(KEY));
}

#[test]
fn ids_waiting_for_resolution_count_toward_the_bound() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 5000);
    assert_eq!(book.ids_in_flight(), 5000, "not 1 for the event");
    let ids: BTreeSet<Uuid> = (0..5000).map(Uuid::from_u128).collect();
    let mut sessions = BTreeMap::new();
    sessions.insert(Uuid::from_u128(9), ids);
    let resolved = Resolved {
        sessions,
        ..Default::default()
    };
    book.resolved(KEY, resolved, true, 1000, Utc::now());
    assert_eq!(book.ids_in_flight(), 5000, "now counted in its parts, once");
}

/// An event resolved in line that waits for the workspace's scan for examples: its ids are in its
/// parts before its resolution ends, and count once.
#[test]
fn ids_in_parts_before_resolution_ends_count_once_when_they_are_the_named_ones() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 3);
    let page = Resolved {
        sessions: BTreeMap::from([(Uuid::from_u128(9), ids(3))]),
        ..Default::default()
    };
    let first = book.resolved(KEY, page, false, 1000, Utc::now());
    assert_eq!(book.ids_in_flight(), 6, "named, and in a part");
    book.named_in_parts(KEY);
    assert_eq!(book.ids_in_flight(), 3, "in its part only");
    book.resolved(KEY, Resolved::default(), true, 1000, Utc::now());
    assert_eq!(book.ids_in_flight(), 3, "resolution ended: nothing more to take back");
    assert_eq!(accept_all(&mut book, first.work).len(), 1);
    assert_eq!(book.ids_in_flight(), 0);
}

#[test]
fn a_failure_naming_many_ids_is_published_in_parts_of_max_batch() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 0);
    let failure = Unresolved {
        session_id: None,
        trace_ids: (0..2500).map(Uuid::from_u128).collect(),
        reason: FailReason::UnknownSession,
        detail: "no such project".into(),
    };
    let resolved = Resolved {
        failures: vec![failure],
        ..Default::default()
    };
    let Resolution { now, .. } = book.resolved(KEY, resolved, true, 1000, Utc::now());
    let parts: Vec<(u32, u32, usize)> = now
        .iter()
        .map(|o| match o {
            Output::Failed(f) => (f.part, f.parts, f.trace_ids.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(parts, [(0, 3, 1000), (1, 3, 1000), (2, 3, 500)]);
    for _ in 0..2 {
        assert!(!book.published(KEY));
    }
    assert!(book.published(KEY), "done after the third part");
}

#[test]
fn an_id_shared_by_two_requests_completes_both() {
    let mut book = Book::new(Window::default());
    let other = MsgKey { offset: 6, ..KEY };
    book.add(KEY, request(), 0);
    book.add(other, request(), 0);
    let session = Uuid::from_u128(7);
    let r = || Resolved {
        sessions: BTreeMap::from([(session, ids(1))]),
        ..Default::default()
    };
    let Resolution { work: a, .. } = book.resolved(KEY, r(), true, 1000, Utc::now());
    let Resolution { work: b, .. } = book.resolved(other, r(), true, 1000, Utc::now());
    let owners = vec![(0, a[0].0), (0, b[0].0)];
    let done = book.batch_done(owners, &answered(vec![Uuid::from_u128(1)], HashMap::new()));
    assert_eq!(done.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![KEY, other]);
}

/// `ids` answered now, `rejected` refused.
fn answered(ids: Vec<Uuid>, rejected: HashMap<Uuid, crate::api::Refusal>) -> Answered {
    Answered {
        ids,
        rejected,
        audit: HashMap::new(),
        at: Utc::now(),
    }
}

/// Accepts every id of `work`, as one delete call each.
fn accept_all(book: &mut Book, work: Vec<(PartKey, Vec<Uuid>)>) -> Vec<Output> {
    let mut out = Vec::new();
    for (pk, ids) in work {
        let owners = (0..ids.len() as u32).map(|i| (i, pk)).collect();
        out.extend(
            book.batch_done(owners, &answered(ids, HashMap::new()))
                .into_iter()
                .flat_map(|(_, o)| o),
        );
    }
    out
}

#[test]
fn a_selector_resolved_in_pages_fills_parts_and_counts_them_at_the_end() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 0);
    let session = Uuid::from_u128(99);
    let page = |from: u128, n: u128| Resolved {
        sessions: BTreeMap::from([(session, (from..from + n).map(Uuid::from_u128).collect())]),
        ..Default::default()
    };
    // Pages of 3 into parts of 4: the first part fills, then is done, and waits for the count.
    let first = book.resolved(KEY, page(0, 3), false, 4, Utc::now());
    let second = book.resolved(KEY, page(3, 3), false, 4, Utc::now());
    let work: Vec<(u32, usize)> = (first.work.iter().chain(&second.work))
        .map(|(pk, ids)| (pk.part, ids.len()))
        .collect();
    assert_eq!(work, [(0, 3), (0, 1), (1, 2)]);
    assert_eq!(book.ids_in_flight(), 6);
    let done = accept_all(&mut book, first.work.into_iter().chain(second.work).collect());
    assert!(done.is_empty(), "no event before the part count is known: {done:?}");
    assert_eq!(book.ids_in_flight(), 0, "ids of parts done count no more");

    let last = book.resolved(KEY, Resolved::default(), true, 4, Utc::now());
    assert!(last.work.is_empty());
    let parts: Vec<(u32, u32, usize)> = (last.now.iter())
        .map(|o| match o {
            Output::Requested(r) => (r.part, r.parts, r.trace_ids.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        parts,
        [(0, 2, 4), (1, 2, 2)],
        "both parts, counted, once resolution ended"
    );
    assert!(!book.published(KEY));
    assert!(book.published(KEY), "done after both events");
}

#[test]
fn a_part_still_in_flight_when_resolution_ends_is_finished_by_its_last_id() {
    let mut book = Book::new(Window::default());
    book.add(KEY, request(), 2);
    let session = Uuid::from_u128(7);
    let page = Resolved {
        sessions: BTreeMap::from([(session, ids(3))]),
        ..Default::default()
    };
    let first = book.resolved(KEY, page, false, 1000, Utc::now());
    assert_eq!(book.ids_in_flight(), 5, "named ids still count until resolution ends");
    let explicit = Resolved {
        sessions: BTreeMap::from([(session, ids(5))]),
        ..Default::default()
    };
    let last = book.resolved(KEY, explicit, true, 1000, Utc::now());
    assert!(last.now.is_empty());
    assert_eq!(book.ids_in_flight(), 8);
    let mut events = accept_all(&mut book, first.work);
    assert!(events.is_empty());
    events.extend(accept_all(&mut book, last.work));
    match &events[..] {
        [Output::Requested(r)] => {
            assert_eq!((r.part, r.parts), (0, 1));
            assert_eq!(
                r.trace_ids,
                ids(5).into_iter().collect::<Vec<_>>(),
                "one part, each id once"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_partition_gone_elsewhere_takes_its_events_and_their_load_away() {
    let mut book = Book::new(Window::default());
    let other = MsgKey { tp: (0, 1), ..KEY };
    book.add(KEY, request(), 0);
    book.add(other, request(), 4);
    let session = Uuid::from_u128(7);
    let resolved = Resolved {
        sessions: BTreeMap::from([(session, ids(3))]),
        ..Default::default()
    };
    let Resolution { work, .. } = book.resolved(KEY, resolved, true, 1000, Utc::now());
    assert_eq!((book.ids_in_flight(), book.load_of("main")), (7, 9));
    assert_eq!(book.drop_partition((0, 0)), 1);
    assert_eq!(
        (book.ids_in_flight(), book.load_of("main")),
        (4, 5),
        "only partition 1's event is left"
    );
    let done = accept_all(&mut book, work);
    assert!(done.is_empty(), "the answer to a call in flight completes nothing");
    assert_eq!(book.ids_in_flight(), 4);
    assert!(book.contains(&other) && !book.contains(&KEY));
}
