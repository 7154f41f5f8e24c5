//! `ERASURE__…` environment overrides of the TOML file: `ERASURE__INTAKE__LINGER=500ms` sets
//! `intake.linger`. Path segments are lower-cased; under `kafka.properties` the underscores of the
//! last segment become dots (`ERASURE__KAFKA__PROPERTIES__SECURITY_PROTOCOL=SASL_SSL`). A value is read
//! as TOML when it is one (`100`, `true`, `"007"`), else taken as a string.

use super::{invalid, ConfigError};

const PREFIX: &str = "ERASURE__";

/// Applies every `ERASURE__…` variable of `vars` to `table`.
pub fn apply(table: &mut toml::Table, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(path) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let mut keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            return Err(invalid(&name, "empty path segment (use __ between keys)"));
        }
        if keys.len() == 3 && keys[0] == "kafka" && keys[1] == "properties" {
            keys[2] = keys[2].replace('_', ".");
        }
        set(table, &keys, typed(&value), &name)?;
    }
    Ok(())
}

fn typed(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

fn set(table: &mut toml::Table, keys: &[String], value: toml::Value, name: &str) -> Result<(), ConfigError> {
    let (last, parents) = keys.split_last().expect("at least one key");
    let mut at = table;
    for key in parents {
        let entry = at
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry
            .as_table_mut()
            .ok_or_else(|| invalid(name, format!("{key} is not a table")))?;
    }
    at.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_and_add_keys() {
        let mut t: toml::Table = "[intake]\nlinger = \"2s\"\n".parse().unwrap();
        let vars = [
            ("ERASURE__INTAKE__LINGER", "500ms"),
            ("ERASURE__INTAKE__MAX_BATCH", "10"),
            ("ERASURE__KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SASL_SSL"),
            ("ERASURE__WORKSPACES__MAIN__TENANT_ID", "\"007\""),
            ("OTHER", "ignored"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        apply(&mut t, vars).unwrap();
        assert_eq!(t["intake"]["linger"].as_str(), Some("500ms"));
        assert_eq!(t["intake"]["max_batch"].as_integer(), Some(10));
        assert_eq!(t["kafka"]["properties"]["security.protocol"].as_str(), Some("SASL_SSL"));
        assert_eq!(t["workspaces"]["main"]["tenant_id"].as_str(), Some("007"));
        let bad = apply(&mut t, [("ERASURE__INTAKE__LINGER__X".to_owned(), "1".to_owned())]);
        assert!(bad.unwrap_err().to_string().contains("ERASURE__INTAKE__LINGER__X"));
    }
}
