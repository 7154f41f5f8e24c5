//! Evaluation of a parsed filter against one run.

use std::cmp::Ordering;

use super::{Expr, Field, Lit, Op};
use serde_json::Value;

use crate::model::{parse_time, Run};

pub fn matches(expr: &Expr, run: &Run) -> bool {
    match expr {
        Expr::And(items) => and(items, run),
        Expr::Or(items) => items.iter().any(|e| matches(e, run)),
        Expr::Not(inner) => !matches(inner, run),
        Expr::Search(text) => search(text, run),
        Expr::Cmp(op, field, lit) if is_meta(*field) => {
            // A lone `neq` on metadata means "no pair equals": the negated `eq`.
            let positive = if *op == Op::Neq { Op::Eq } else { *op };
            let hit = run.metadata.iter().any(|pair| meta_cmp(positive, *field, lit, pair));
            if *op == Op::Neq {
                !hit
            } else {
                hit
            }
        }
        Expr::Cmp(op, field, lit) => cmp(*op, *field, lit, run),
    }
}

fn is_meta(field: Field) -> bool {
    matches!(field, Field::MetadataKey | Field::MetadataValue)
}

/// `and`: the metadata comparisons among the direct children must hold for one and the same pair.
fn and(items: &[Expr], run: &Run) -> bool {
    let (meta, rest): (Vec<&Expr>, Vec<&Expr>) = items
        .iter()
        .partition(|e| matches!(e, Expr::Cmp(_, f, _) if is_meta(*f)));
    if !rest.iter().all(|e| matches(e, run)) {
        return false;
    }
    if meta.is_empty() {
        return true;
    }
    run.metadata.iter().any(|pair| {
        meta.iter().all(|e| match e {
            Expr::Cmp(op, field, lit) => meta_cmp(*op, *field, lit, pair),
            _ => false,
        })
    })
}

fn meta_cmp(op: Op, field: Field, lit: &Lit, (key, value): &(std::sync::Arc<str>, std::sync::Arc<str>)) -> bool {
    let actual: &str = if field == Field::MetadataKey { key } else { value };
    str_cmp(op, Some(actual), lit)
}

fn search(text: &str, run: &Run) -> bool {
    let needle = text.to_lowercase();
    let hay = |s: &str| s.to_lowercase().contains(&needle);
    hay(&run.name)
        || run.inputs.as_ref().is_some_and(|v| hay(&v.to_string()))
        || run.outputs.as_ref().is_some_and(|v| hay(&v.to_string()))
}

fn cmp(op: Op, field: Field, lit: &Lit, run: &Run) -> bool {
    let uuid = |u: uuid::Uuid| Some(u.to_string());
    match field {
        Field::Id => str_cmp(op, uuid(run.id).as_deref(), lit),
        Field::TraceId => str_cmp(op, uuid(run.trace_id).as_deref(), lit),
        Field::ParentRunId => str_cmp(op, run.parent_run_id.map(|u| u.to_string()).as_deref(), lit),
        Field::SessionId => str_cmp(op, uuid(run.session_id).as_deref(), lit),
        Field::Name => str_cmp(op, Some(&run.name), lit),
        Field::RunType => str_cmp(op, Some(&run.run_type), lit),
        Field::Status => str_cmp(op, Some(&run.status), lit),
        Field::Error => match lit {
            Lit::Null | Lit::Bool(_) => {
                let has_error = run.error.is_some();
                let want = matches!(lit, Lit::Bool(true));
                let is = if matches!(lit, Lit::Null) {
                    !has_error
                } else {
                    has_error == want
                };
                apply(op, if is { Ordering::Equal } else { Ordering::Less })
            }
            _ => str_cmp(op, run.error.as_deref(), lit),
        },
        Field::Tags => match op {
            Op::Has | Op::Eq => run.tags.iter().any(|t| str_cmp(Op::Eq, Some(t), lit)),
            Op::Neq => !run.tags.iter().any(|t| str_cmp(Op::Eq, Some(t), lit)),
            Op::In => run.tags.iter().any(|t| str_cmp(Op::In, Some(t), lit)),
            _ => false,
        },
        Field::IsRoot => matches!(lit, Lit::Bool(b) if apply(op, bool_ord(run.is_root(), *b))),
        Field::StartTime => time_cmp(op, Some(run.start_time), lit),
        Field::EndTime => time_cmp(op, run.end_time, lit),
        Field::Metadata => {
            let pairs = run.metadata.iter().map(|(k, v)| (&**k, Value::String(v.to_string())));
            super::example::holds(op, lit, &pairs.collect())
        }
        Field::MetadataKey | Field::MetadataValue => false,
    }
}

fn bool_ord(a: bool, b: bool) -> Ordering {
    a.cmp(&b)
}

fn apply(op: Op, ord: Ordering) -> bool {
    match op {
        Op::Eq | Op::Has | Op::In | Op::Exists => ord == Ordering::Equal,
        Op::Neq => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Gte => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Lte => ord != Ordering::Greater,
    }
}

fn str_cmp(op: Op, actual: Option<&str>, lit: &Lit) -> bool {
    match (op, lit) {
        (Op::In, Lit::List(items)) => items.iter().any(|l| str_cmp(Op::Eq, actual, l)),
        (_, Lit::Null) => apply(
            op,
            if actual.is_none() {
                Ordering::Equal
            } else {
                Ordering::Greater
            },
        ),
        (Op::Has, Lit::Str(s)) => actual.is_some_and(|a| a.contains(s.as_str())),
        (_, Lit::Str(s)) => actual.is_some_and(|a| apply(op, a.cmp(s.as_str()))),
        (_, Lit::Num(n)) => actual
            .and_then(|a| a.parse::<f64>().ok())
            .is_some_and(|a| a.partial_cmp(n).is_some_and(|ord| apply(op, ord))),
        (_, Lit::Bool(b)) => actual.is_some_and(|a| apply(op, a.cmp(if *b { "true" } else { "false" }))),
        (_, Lit::List(_)) => false,
    }
}

fn time_cmp(op: Op, actual: Option<i64>, lit: &Lit) -> bool {
    let Some(actual) = actual else {
        return matches!(lit, Lit::Null) && op == Op::Eq;
    };
    match lit {
        Lit::Str(s) => parse_time(s).is_some_and(|t| apply(op, actual.cmp(&t))),
        Lit::Null => op == Op::Neq,
        _ => false,
    }
}
