//! Evaluation of a parsed filter against a dataset example (`GET /examples?filter=`), as the SDK's
//! `list_examples` documents it: `has(metadata, '{"k": "v"}')` (the metadata holds every pair of
//! the object), `exists(metadata, "k")`, `eq`/`neq`/`in` on `id`, combined with `and`, `or` and
//! `not`. Other fields are refused (400), rather than silently matching nothing.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Expr, Field, Lit, Op};
use crate::model::Example;

/// Whether `expr` uses only what examples can be filtered on.
pub fn example_filter_supported(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().try_for_each(example_filter_supported),
        Expr::Not(inner) => example_filter_supported(inner),
        Expr::Cmp(Op::Has | Op::Exists, Field::Metadata, Lit::Str(_)) => Ok(()),
        Expr::Cmp(Op::Eq | Op::Neq | Op::In, Field::Id, _) => Ok(()),
        other => Err(format!("unsupported example filter: {other:?}")),
    }
}

/// Whether the example, with `metadata` (its version in view), matches `expr`.
pub fn matches_example(expr: &Expr, e: &Example, metadata: Option<&Map<String, Value>>) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|x| matches_example(x, e, metadata)),
        Expr::Or(items) => items.iter().any(|x| matches_example(x, e, metadata)),
        Expr::Not(inner) => !matches_example(inner, e, metadata),
        Expr::Cmp(op, Field::Metadata, lit) => {
            let pairs = metadata.into_iter().flatten().map(|(k, v)| (k.as_str(), v.clone()));
            holds(*op, lit, &pairs.collect())
        }
        Expr::Cmp(op, Field::Id, lit) => {
            let id = e.id.to_string();
            let hit = match lit {
                Lit::Str(s) => s.eq_ignore_ascii_case(&id),
                Lit::List(items) => items
                    .iter()
                    .any(|l| matches!(l, Lit::Str(s) if s.eq_ignore_ascii_case(&id))),
                _ => false,
            };
            hit != (*op == Op::Neq)
        }
        _ => false,
    }
}

/// `has(metadata, '{json}')`: every pair of the JSON object is among `pairs`;
/// `exists(metadata, "key")`: the key is among them.
pub(super) fn holds(op: Op, lit: &Lit, pairs: &HashMap<&str, Value>) -> bool {
    let Lit::Str(s) = lit else { return false };
    match op {
        Op::Exists => pairs.contains_key(s.as_str()),
        Op::Has => match serde_json::from_str::<Map<String, Value>>(s) {
            Ok(wanted) => wanted.iter().all(|(k, v)| pairs.get(k.as_str()) == Some(v)),
            Err(_) => false,
        },
        _ => false,
    }
}
