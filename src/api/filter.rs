//! Builds LangSmith filter expressions. Every string value is JSON-encoded here, as the official
//! SDKs do (`json.dumps` in Python, `JSON.stringify` in JS), so no input can change the expression's
//! structure (keys are also restricted to a safe alphabet on input).

/// `s` as a JSON string literal, ASCII only (`\uXXXX` for the rest, as Python's `json.dumps`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Runs whose metadata holds every pair: each pair in its own `and`, so key and value bind to one
/// metadata entry.
pub fn metadata_all<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let each: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("and(eq(metadata_key, {}), eq(metadata_value, {}))", quote(k), quote(v)))
        .collect();
    match each.len() {
        1 => each.into_iter().next().unwrap_or_default(),
        _ => format!("and({})", each.join(", ")),
    }
}

/// Dataset examples whose metadata holds every pair: `has(metadata, '<JSON object>')`, the form
/// LangSmith documents for examples, the object passed as one string value.
pub fn metadata_holds<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = (pairs.into_iter())
        .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
        .collect();
    format!(
        "has(metadata, {})",
        quote(&serde_json::Value::Object(object).to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [&str; 7] = [
        r#"a"b\c"#,
        "line\nbreak\r\ttab\u{8}\u{c}",
        "\u{0}\u{1f}\u{7f}",
        "Zoë Ødegård – 東京",
        "emoji 🦀 outside the BMP",
        "slash / and 'single' quotes",
        r#"v") , or(eq(name, "x"#,
    ];

    #[test]
    fn values_are_encoded_as_python_json_dumps_does() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("a\nb\u{1}"), r#""a\nb\u0001""#);
        assert_eq!(quote("ë🦀"), r#""\u00eb\ud83e\udd80""#);
        assert_eq!(quote("/"), r#""/""#);
        for s in HOSTILE {
            let q = quote(s);
            assert!(q.is_ascii(), "{q}");
            assert_eq!(
                serde_json::from_str::<String>(&q).unwrap(),
                s,
                "a JSON decoder reads it back"
            );
        }
    }

    #[test]
    fn pairs_bind_key_and_value_together() {
        assert!(metadata_all([("a", "1"), ("b", "2")]).starts_with("and(and("));
        assert_eq!(
            metadata_all([("user_id", "u\"1")]),
            r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "u\"1"))"#
        );
    }

    #[test]
    fn an_examples_filter_carries_the_pairs_as_one_json_string() {
        for hostile in HOSTILE {
            let built = metadata_holds([("user_id", hostile), ("k", "v")]);
            let expr = langsmith_sim::filter::parse(&built).expect("parses");
            let json = serde_json::json!({"k": "v", "user_id": hostile}).to_string();
            let want = langsmith_sim::filter::Lit::Str(json);
            assert!(format!("{expr:?}").contains(&format!("{want:?}")), "{expr:?}");
        }
    }

    #[test]
    fn the_simulator_parses_what_we_build_as_one_value() {
        for hostile in HOSTILE {
            let expr = langsmith_sim::filter::parse(&metadata_all([("k", hostile)])).expect("parses");
            let want = langsmith_sim::filter::Lit::Str(hostile.to_owned());
            assert!(format!("{expr:?}").contains(&format!("{want:?}")), "{expr:?}");
        }
    }
}
