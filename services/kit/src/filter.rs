//! AIP-160 filters, compiled to SQL over a whitelist of fields.
//!
//! Supported: comparisons `= != < <= > >=`, `:` (has: a tag in a list, a substring of a text),
//! a trailing `*` in a `=` string for a prefix match, `AND` (or juxtaposition), `OR`, `NOT` / `-`,
//! parentheses, strings in double or single quotes, numbers, `true`/`false`, bare words (enum
//! names). Anything else is INVALID_ARGUMENT on the `filter` field, naming what was wrong.

use crate::db::{Sql, Value};
use crate::error::ApiError;

const MAX_LEN: usize = 2_000;
const MAX_DEPTH: usize = 16;
const MAX_TERMS: usize = 40;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Has,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Has => "LIKE",
        }
    }
}

/// A literal in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(String),
    Word(String),
}

impl Literal {
    pub fn as_str(&self) -> &str {
        match self {
            Literal::Text(s) | Literal::Number(s) | Literal::Word(s) => s,
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { field: String, op: Op, value: Literal },
}

/// How a filterable field is stored and compared.
#[derive(Clone, Copy)]
pub enum FieldKind {
    /// Text column; `=` with a trailing `*` is a prefix match, `:` a substring match.
    Text,
    /// Integer column compared with numbers.
    Int,
    /// 0/1 column compared with `true`/`false`.
    Bool,
    /// Integer column holding an enum number; the literal is parsed by the function.
    Enum(fn(&str) -> Option<i64>),
    /// `YYYY-MM-DD` text column.
    Date,
    /// Microseconds column compared with RFC 3339 timestamps.
    Timestamp,
    /// Text column holding `|a|b|`; only `:` (has) is allowed.
    Tags,
    /// Anything else: the function writes the SQL for one comparison.
    Custom(fn(Op, &Literal, &mut Sql) -> Result<(), String>),
}

/// A field a filter may name, and the column it maps to.
#[derive(Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
}

/// Parses `text`; an empty filter is `None`.
pub fn parse(text: &str) -> Result<Option<Expr>, ApiError> {
    if text.len() > MAX_LEN {
        return Err(bad(format!("must be at most {MAX_LEN} characters")));
    }
    let tokens = lex(text).map_err(bad)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        terms: 0,
    };
    let expr = parser.or(0).map_err(bad)?;
    if parser.pos != parser.tokens.len() {
        return Err(bad(format!("unexpected {:?}", parser.tokens[parser.pos])));
    }
    Ok(Some(expr))
}

/// Appends the SQL condition of `expr` to `sql`, with fields looked up in `fields`.
pub fn compile(expr: &Expr, fields: &[Field], sql: &mut Sql) -> Result<(), ApiError> {
    compile_inner(expr, fields, sql).map_err(bad)
}

fn bad(description: impl Into<String>) -> ApiError {
    ApiError::invalid("filter", description)
}

fn compile_inner(expr: &Expr, fields: &[Field], sql: &mut Sql) -> Result<(), String> {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            sql.push("(");
            compile_inner(a, fields, sql)?;
            sql.push(if matches!(expr, Expr::And(..)) { " AND " } else { " OR " });
            compile_inner(b, fields, sql)?;
            sql.push(")");
        }
        Expr::Not(inner) => {
            sql.push("NOT (");
            compile_inner(inner, fields, sql)?;
            sql.push(")");
        }
        Expr::Compare { field, op, value } => {
            let spec = fields.iter().find(|f| f.name == field).ok_or_else(|| {
                let names: Vec<_> = fields.iter().map(|f| f.name).collect();
                format!("unknown field {field:?}; filterable fields: {}", names.join(", "))
            })?;
            compare(spec, *op, value, sql)?;
        }
    }
    Ok(())
}

fn compare(spec: &Field, op: Op, value: &Literal, sql: &mut Sql) -> Result<(), String> {
    let name = spec.name;
    let column = spec.column;
    match spec.kind {
        FieldKind::Text => {
            let text = value.as_str();
            match op {
                Op::Has => {
                    sql.push(column)
                        .push(" LIKE ")
                        .bind(Value::Text(format!("%{}%", escape_like(text))));
                    sql.push(" ESCAPE '\\'");
                }
                Op::Eq if text.ends_with('*') => {
                    let prefix = &text[..text.len() - 1];
                    sql.push(column)
                        .push(" LIKE ")
                        .bind(Value::Text(format!("{}%", escape_like(prefix))));
                    sql.push(" ESCAPE '\\'");
                }
                _ => {
                    sql.push(column)
                        .push(" ")
                        .push(op.sql())
                        .push(" ")
                        .bind(Value::Text(text.to_string()));
                }
            }
        }
        FieldKind::Int => {
            no_has(name, op)?;
            let n: i64 = value
                .as_str()
                .parse()
                .map_err(|_| format!("{name} takes a whole number"))?;
            sql.push(column).push(" ").push(op.sql()).push(" ").bind(Value::Int(n));
        }
        FieldKind::Bool => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!("{name} only takes = or !="));
            }
            let b = match value.as_str() {
                "true" => 1,
                "false" => 0,
                _ => return Err(format!("{name} takes true or false")),
            };
            sql.push(column).push(" ").push(op.sql()).push(" ").bind(Value::Int(b));
        }
        FieldKind::Enum(parse) => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!("{name} only takes = or !="));
            }
            let n = parse(value.as_str()).ok_or_else(|| format!("{:?} is not a value of {name}", value.as_str()))?;
            sql.push(column).push(" ").push(op.sql()).push(" ").bind(Value::Int(n));
        }
        FieldKind::Date => {
            no_has(name, op)?;
            let text = value.as_str();
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| format!("{name} takes a date YYYY-MM-DD"))?;
            sql.push(column)
                .push(" ")
                .push(op.sql())
                .push(" ")
                .bind(Value::Text(text.to_string()));
        }
        FieldKind::Timestamp => {
            no_has(name, op)?;
            let t = chrono::DateTime::parse_from_rfc3339(value.as_str())
                .map_err(|_| format!("{name} takes an RFC 3339 time such as 2026-01-31T08:00:00Z"))?;
            sql.push(column)
                .push(" ")
                .push(op.sql())
                .push(" ")
                .bind(Value::Int(t.timestamp_micros()));
        }
        FieldKind::Tags => {
            if op != Op::Has {
                return Err(format!("{name} only takes : (has)"));
            }
            sql.push(column)
                .push(" LIKE ")
                .bind(Value::Text(format!("%|{}|%", escape_like(value.as_str()))));
            sql.push(" ESCAPE '\\'");
        }
        FieldKind::Custom(write) => write(op, value, sql)?,
    }
    Ok(())
}

fn no_has(name: &str, op: Op) -> Result<(), String> {
    if op == Op::Has {
        Err(format!("{name} does not take :"))
    } else {
        Ok(())
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Op(Op),
    Minus,
    Str(String),
    Word(String),
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            '=' => {
                tokens.push(Token::Op(Op::Eq));
                i += 1;
            }
            ':' => {
                tokens.push(Token::Op(Op::Has));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                tokens.push(Token::Op(match (c, eq) {
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    ('>', true) => Op::Ge,
                    _ => Op::Gt,
                }));
                i += if eq { 2 } else { 1 };
            }
            '-' if chars.get(i + 1).is_some_and(|n| !n.is_ascii_digit()) => {
                tokens.push(Token::Minus);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            let next = chars.get(i + 1).ok_or("unterminated string")?;
                            s.push(*next);
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '+' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | '+' | '*'))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, String> {
        let mut left = self.and(depth)?;
        while self.is_word("OR") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, String> {
        let mut left = self.unary(depth)?;
        loop {
            if self.is_word("AND") {
                self.pos += 1;
            } else if self.peek().is_none() || self.is_word("OR") || self.peek() == Some(&Token::RParen) {
                break;
            }
            let right = self.unary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nests deeper than {MAX_DEPTH} levels"));
        }
        if self.is_word("NOT") || self.peek() == Some(&Token::Minus) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.or(depth + 1)?;
            if self.peek() != Some(&Token::RParen) {
                return Err("missing closing parenthesis".into());
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("has more than {MAX_TERMS} comparisons"));
        }
        let field = match self.tokens.get(self.pos) {
            Some(Token::Word(w)) if !matches!(w.as_str(), "AND" | "OR" | "NOT") => w.clone(),
            Some(other) => return Err(format!("expected a field name, found {other:?}")),
            None => return Err("expected a field name at the end".into()),
        };
        self.pos += 1;
        let op = match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => *op,
            _ => return Err(format!("expected an operator after {field}")),
        };
        self.pos += 1;
        let value = match self.tokens.get(self.pos) {
            Some(Token::Str(s)) => Literal::Text(s.clone()),
            Some(Token::Word(w)) if w.parse::<f64>().is_ok() => Literal::Number(w.clone()),
            Some(Token::Word(w)) => Literal::Word(w.clone()),
            _ => return Err(format!("expected a value after {field}")),
        };
        self.pos += 1;
        Ok(Expr::Compare { field, op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field {
            name: "department",
            column: "department",
            kind: FieldKind::Text,
        },
        Field {
            name: "vip",
            column: "vip",
            kind: FieldKind::Bool,
        },
        Field {
            name: "birth_date",
            column: "birth_date",
            kind: FieldKind::Date,
        },
        Field {
            name: "tags",
            column: "tags",
            kind: FieldKind::Tags,
        },
    ];

    fn to_sql(text: &str) -> Result<Sql, ApiError> {
        let mut sql = Sql::default();
        compile(&parse(text)?.expect("non-empty"), FIELDS, &mut sql)?;
        Ok(sql)
    }

    #[test]
    fn filters_compile_to_bound_sql() {
        let sql = to_sql(r#"department = "cardiology" AND (vip = true OR NOT birth_date < "1960-01-01")"#).unwrap();
        assert_eq!(sql.text, "(department = $1 AND (vip = $2 OR NOT (birth_date < $3)))");
        assert_eq!(sql.args[0], Value::Text("cardiology".into()));
        assert_eq!(sql.args[1], Value::Int(1));
        let sql = to_sql(r#"tags:"diabetes" department="card*""#).unwrap();
        assert_eq!(sql.args[0], Value::Text("%|diabetes|%".into()));
        assert_eq!(sql.args[1], Value::Text("card%".into()));
    }

    #[test]
    fn bad_filters_name_the_problem() {
        for bad in [
            "unknown = 1",
            "department",
            "department = ",
            "(vip = true",
            "vip = maybe",
            "birth_date < \"yesterday\"",
            "tags = \"x\"",
            "department = \"x",
            "vip = true; DROP TABLE patients",
        ] {
            let err = to_sql(bad).expect_err(bad);
            assert!(
                matches!(err, ApiError::InvalidArgument(ref v) if v[0].field == "filter"),
                "{bad}: {err:?}"
            );
        }
        assert!(parse("").unwrap().is_none());
        assert!(parse(&"(".repeat(40)).is_err());
    }
}
