//! The trace-query filter language (`filter`, `trace_filter`, `tree_filter`):
//! `and(eq(metadata_key, "user_id"), eq(metadata_value, "u-1"))`, `in(trace_id, ["…"])`, `has(tags, "x")`;
//! and the examples' (`GET /examples?filter=`): `has(metadata, '{"user_id": "u-1"}')`,
//! `exists(metadata, "user_id")`, see `example.rs`.
//!
//! Metadata leaves bind to one key/value pair: inside an `and`, every `metadata_key`/`metadata_value`
//! comparison among its direct children must hold for the *same* pair, as LangSmith's kv table does.

use std::fmt;

const MAX_DEPTH: usize = 32;
const MAX_LEN: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Op, Field, Lit),
    Search(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Has,
    /// `exists(metadata, "key")`: the key is present, whatever its value.
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    Id,
    TraceId,
    ParentRunId,
    SessionId,
    Name,
    RunType,
    Status,
    StartTime,
    EndTime,
    Error,
    Tags,
    MetadataKey,
    MetadataValue,
    IsRoot,
    /// The metadata object as a whole: `has(metadata, '{json}')` (it holds every pair of the
    /// object) and `exists(metadata, "key")`.
    Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    List(Vec<Lit>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid filter: {}", self.0)
    }
}

pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > MAX_LEN {
        return Err(ParseError(format!("longer than {MAX_LEN} bytes")));
    }
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
    };
    let expr = p.expr(0)?;
    p.ws();
    if p.i != p.s.len() {
        return p.fail("unexpected text after the expression");
    }
    Ok(expr)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, what: &str) -> Result<T, ParseError> {
        Err(ParseError(format!("{what} at offset {}", self.i)))
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), ParseError> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            self.fail(&format!("expected '{}'", c as char))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        if start == self.i {
            return self.fail("expected a name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        let name = self.ident()?;
        self.eat(b'(')?;
        let expr = match name.as_str() {
            "and" | "or" => {
                let mut items = vec![self.expr(depth + 1)?];
                while self.peek_comma() {
                    items.push(self.expr(depth + 1)?);
                }
                if name == "and" {
                    Expr::And(items)
                } else {
                    Expr::Or(items)
                }
            }
            "not" => Expr::Not(Box::new(self.expr(depth + 1)?)),
            "search" => match self.lit(depth)? {
                Lit::Str(s) => Expr::Search(s),
                _ => return self.fail("search takes a string"),
            },
            _ => {
                let op = op_named(&name).ok_or_else(|| ParseError(format!("unknown function '{name}'")))?;
                let field_name = self.ident()?;
                let field =
                    field_named(&field_name).ok_or_else(|| ParseError(format!("unknown field '{field_name}'")))?;
                self.eat(b',')?;
                let lit = self.lit(depth)?;
                if (op == Op::In) != matches!(lit, Lit::List(_)) {
                    return self.fail("'in' takes a list, and only 'in' does");
                }
                Expr::Cmp(op, field, lit)
            }
        };
        self.eat(b')')?;
        Ok(expr)
    }

    fn peek_comma(&mut self) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b',') {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn lit(&mut self, depth: usize) -> Result<Lit, ParseError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'"') | Some(b'\'') => self.string().map(Lit::Str),
            Some(b'[') => {
                if depth > MAX_DEPTH {
                    return self.fail("nested too deeply");
                }
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Lit::List(items));
                }
                loop {
                    items.push(self.lit(depth + 1)?);
                    if !self.peek_comma() {
                        break;
                    }
                }
                self.eat(b']')?;
                Ok(Lit::List(items))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.') {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                text.parse().map(Lit::Num).or_else(|_| self.fail("bad number"))
            }
            _ => match self.ident()?.as_str() {
                "null" => Ok(Lit::Null),
                "true" => Ok(Lit::Bool(true)),
                "false" => Ok(Lit::Bool(false)),
                other => Err(ParseError(format!("unexpected '{other}' where a value belongs"))),
            },
        }
    }

    /// A quoted string with JSON's escapes (`\" \\ \/ \b \f \n \r \t \uXXXX`, surrogate pairs
    /// included), plus `\'` for single-quoted strings: the official SDKs JSON-encode values.
    fn string(&mut self) -> Result<String, ParseError> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return self.fail("unterminated string"),
                Some(&c) if c == quote => {
                    self.i += 1;
                    return String::from_utf8(out).or_else(|_| self.fail("string is not UTF-8"));
                }
                Some(b'\\') => {
                    let simple = match self.s.get(self.i + 1) {
                        Some(b'n') => Some(b'\n'),
                        Some(b't') => Some(b'\t'),
                        Some(b'r') => Some(b'\r'),
                        Some(b'b') => Some(0x08),
                        Some(b'f') => Some(0x0c),
                        Some(&c @ (b'\\' | b'"' | b'\'' | b'/')) => Some(c),
                        Some(b'u') => None,
                        _ => return self.fail("bad escape"),
                    };
                    match simple {
                        Some(c) => {
                            out.push(c);
                            self.i += 2;
                        }
                        None => {
                            let c = self.unicode_escape()?;
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                    }
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `\uXXXX` at the cursor, or a surrogate pair of two: the character they encode.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        if !(0xD800..0xDC00).contains(&first) {
            return char::from_u32(first).map_or_else(|| self.fail("lone low surrogate"), Ok);
        }
        if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
            return self.fail("high surrogate without its pair");
        }
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return self.fail("high surrogate without its pair");
        }
        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
        char::from_u32(code).map_or_else(|| self.fail("bad surrogate pair"), Ok)
    }

    /// Reads `\uXXXX` at the cursor and returns the code unit.
    fn hex4(&mut self) -> Result<u32, ParseError> {
        let Some(hex) = self
            .s
            .get(self.i + 2..self.i + 6)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
        else {
            return self.fail("bad \\u escape");
        };
        let unit = hex
            .iter()
            .fold(0, |n, d| n * 16 + (*d as char).to_digit(16).unwrap_or(0));
        self.i += 6;
        Ok(unit)
    }
}

fn op_named(name: &str) -> Option<Op> {
    Some(match name {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "in" => Op::In,
        "has" => Op::Has,
        "exists" => Op::Exists,
        _ => return None,
    })
}

fn field_named(name: &str) -> Option<Field> {
    Some(match name {
        "id" => Field::Id,
        "trace_id" => Field::TraceId,
        "parent_run_id" => Field::ParentRunId,
        "session_id" => Field::SessionId,
        "name" => Field::Name,
        "run_type" => Field::RunType,
        "status" => Field::Status,
        "start_time" => Field::StartTime,
        "end_time" => Field::EndTime,
        "error" => Field::Error,
        "tags" => Field::Tags,
        "metadata_key" => Field::MetadataKey,
        "metadata_value" => Field::MetadataValue,
        "is_root" => Field::IsRoot,
        "metadata" => Field::Metadata,
        _ => return None,
    })
}

mod eval;
mod example;
pub use eval::matches;
pub use example::{example_filter_supported, matches_example};

#[cfg(test)]
mod tests;
