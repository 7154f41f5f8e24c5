//! Builds LangSmith filter expressions. Every string is quoted and escaped here, so no input can
//! change the expression's structure (keys are also restricted to a safe alphabet on input).

/// `"…"` with backslashes and double quotes escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            metadata_all([("user_id", "x\"), or(eq(name, \"y")]),
            r#"and(eq(metadata_key, "user_id"), eq(metadata_value, "x\"), or(eq(name, \"y"))"#
        );
        assert!(metadata_all([("a", "1"), ("b", "2")]).starts_with("and(and("));
    }

    #[test]
    fn the_simulator_parses_what_we_build_as_one_value() {
        let hostile = r#"v") , or(eq(name, "x"#;
        let expr = langsmith_sim::filter::parse(&metadata_all([("k", hostile)])).expect("parses");
        let want = langsmith_sim::filter::Lit::Str(hostile.to_owned());
        assert!(format!("{expr:?}").contains(&format!("{want:?}")), "{expr:?}");
    }
}
