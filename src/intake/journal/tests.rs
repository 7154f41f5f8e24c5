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
