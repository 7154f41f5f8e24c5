use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::model::Run;

fn run(meta: &[(&str, &str)]) -> Run {
    let id = Uuid::from_u128(1);
    Run {
        id,
        trace_id: id,
        parent_run_id: None,
        session_id: Uuid::from_u128(9),
        name: "chat".into(),
        run_type: "chain".into(),
        start_time: 1_700_000_000_000_000,
        end_time: None,
        status: "success".into(),
        error: None,
        metadata: meta.iter().map(|(k, v)| (Arc::from(*k), Arc::from(*v))).collect(),
        tags: vec![Arc::from("prod")].into(),
        inputs: None,
        outputs: None,
    }
}

fn check(src: &str, r: &Run) -> bool {
    matches(&parse(src).unwrap_or_else(|e| panic!("{src}: {e}")), r)
}

#[test]
fn key_and_value_bind_to_one_pair() {
    let r = run(&[("user_id", "a"), ("team", "b")]);
    assert!(check(
        r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "a"))"#,
        &r
    ));
    assert!(!check(
        r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "b"))"#,
        &r
    ));
    assert!(check(r#"eq(metadata_key, 'team')"#, &r));
    assert!(!check(r#"neq(metadata_key, 'team')"#, &r));
    assert!(check(
        r#"and(in(metadata_key, ["x", "team"]), eq(metadata_value, "b"))"#,
        &r
    ));
}

#[test]
fn ids_tags_roots_and_times() {
    let r = run(&[]);
    let id = r.id.to_string();
    assert!(check(&format!("eq(trace_id, \"{id}\")"), &r));
    assert!(check(&format!("in(id, [\"{}\", \"{id}\"])", Uuid::nil()), &r));
    assert!(!check(&format!("neq(id, '{id}')"), &r));
    assert!(check(r#"has(tags, "prod")"#, &r));
    assert!(check("eq(is_root, true)", &r));
    assert!(check(r#"gt(start_time, "2023-01-01T00:00:00Z")"#, &r));
    assert!(!check(r#"gte(start_time, "2024-01-01")"#, &r));
    assert!(check("eq(error, null)", &r));
    assert!(check(r#"or(eq(name, "x"), not(eq(name, "y")))"#, &r));
    assert!(check(r#"search("CHA")"#, &r));
}

#[test]
fn escapes_keep_quotes_inside_the_string() {
    let r = run(&[("k", r#"a") , or(eq(name, "chat"#)]);
    let escaped = r#"and(eq(metadata_key, "k"), eq(metadata_value, "a\") , or(eq(name, \"chat"))"#;
    assert!(check(escaped, &r));
    assert!(
        !check(escaped, &run(&[("k", "a")])),
        "the escaped text is one value, not an expression"
    );
}

#[test]
fn malformed_filters_are_errors() {
    for bad in [
        "",
        "eq(",
        "eq(name)",
        "eq(nope, 'x')",
        "frob(name, 'x')",
        "in(id, 'x')",
        "eq(id, ['x'])",
        "eq(name, 'x') trailing",
        "eq(name, 'unterminated)",
        r"eq(name, 'bad\q')",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should not parse");
    }
    let deep = format!("{}eq(name, 'x'){}", "not(".repeat(100), ")".repeat(100));
    assert!(parse(&deep).is_err());
}

#[test]
fn strings_take_every_json_escape() {
    let cases = [
        "plain",
        "quote \" and backslash \\",
        "controls \n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
        "slash / and 'single'",
        "Zoë – 東京 🦀",
    ];
    for want in cases {
        // As JS's JSON.stringify writes it, and as Python's json.dumps does (ASCII only).
        let js = serde_json::to_string(want).unwrap();
        let py: String = js
            .chars()
            .flat_map(|c| match c {
                ' '..='~' => vec![c.to_string()],
                _ => c
                    .encode_utf16(&mut [0; 2])
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect(),
            })
            .collect();
        for quoted in [js, py, r#""\/""#.to_owned()] {
            let expr = parse(&format!("eq(name, {quoted})")).unwrap_or_else(|e| panic!("{quoted}: {e}"));
            let Expr::Cmp(_, _, Lit::Str(got)) = expr else {
                panic!("{expr:?}")
            };
            if quoted == r#""\/""# {
                assert_eq!(got, "/");
            } else {
                assert_eq!(got, want, "{quoted}");
            }
        }
    }
    for bad in [
        r#""\x41""#,
        r#""\u12""#,
        r#""\ud83e""#,
        r#""\udd80""#,
        r#""\ud83e\u0041""#,
    ] {
        assert!(parse(&format!("eq(name, {bad})")).is_err(), "{bad}");
    }
}
