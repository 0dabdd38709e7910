//! Analysis conditions: the `successCondition` / `failureCondition` of an analysis
//! template, e.g. `result < 0.01`, `result[0] >= 0.95`, `!result.degraded`,
//! `isNaN(result) || result < 0.3`, `default(result.errors, 0) / result.total < 0.01`.
//!
//! The language is the subset of expr (the language Argo Rollouts' conditions are written
//! in) that real templates use:
//!
//! ```text
//! condition   := or
//! or          := and ( ("||" | "or") and )*
//! and         := not ( ("&&" | "and") not )*
//! not         := ("!" | "not") not | comparison
//! comparison  := sum ( ("<" | "<=" | ">" | ">=" | "==" | "!=") sum )?
//! sum         := product ( ("+" | "-") product )*
//! product     := unary ( ("*" | "/" | "%") unary )*
//! unary       := "-" unary | postfix
//! postfix     := primary ( "[" condition "]" | "." name )*
//! primary     := number | string | "true" | "false" | "nil" | "result"
//!              | function "(" condition ( "," condition )* ")" | "(" condition ")"
//! function    := "len" | "isNaN" | "isInf" | "default" | "asFloat" | "asInt"
//! ```
//!
//! `result` is what the provider answered ([`Value`]): a number (a Prometheus scalar, a
//! CloudWatch value), a list (a Prometheus vector: `result[0]`, `len(result)`), or any
//! JSON (a web provider's answer: `result.completed`). A list of exactly one element is
//! taken as that element where a number is needed, so `result < 0.01` works on a
//! one-series vector.
//!
//! Guarantees: parsing is pure and total: every text gives a [`Condition`] or a
//! [`ConditionError`] naming the column (1-based, in characters) where it went wrong.
//! Evaluation never panics: a condition that does not apply to the answer (a field of a
//! number, an index past the end, a comparison of a string with a number, a result that
//! is not a boolean) is an [`EvalError`] saying so, which the analysis counts as a
//! measurement error, never as a success. A `NaN` satisfies only `!=`, as in IEEE 754,
//! so a missing ratio never passes by accident; `isNaN(result)` asks for it explicitly.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a provider answered, as conditions see it.
///
/// In JSON (the persisted status and recorded observations) non-finite numbers are the
/// strings `"NaN"`, `"+Inf"` and `"-Inf"`, as Prometheus writes them.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// From parsed JSON. The strings `NaN`, `+Inf`, `-Inf` and `Inf` stay strings here;
    /// [`Value::from_json_numbers`] reads them back as numbers.
    pub fn from_json(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// From JSON as this type writes it: the strings `NaN`, `+Inf`, `-Inf` are numbers.
    fn from_json_numbers(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::String(s) => match special_number(&s) {
                Some(n) => Value::Number(n),
                None => Value::String(s),
            },
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(Value::from_json_numbers).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json_numbers(v)))
                    .collect(),
            ),
            other => Value::from_json(other),
        }
    }

    /// As JSON; non-finite numbers become `"NaN"`, `"+Inf"`, `"-Inf"`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => match serde_json::Number::from_f64(*n) {
                Some(n) => serde_json::Value::Number(n),
                None if n.is_nan() => "NaN".into(),
                None if *n > 0.0 => "+Inf".into(),
                None => "-Inf".into(),
            },
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// The answer in one short line, for status and logs (at most 200 characters).
    pub fn display(&self) -> String {
        let text = match self {
            Value::Number(n) => format_number(*n),
            other => other.to_json().to_string(),
        };
        if text.chars().count() > 200 {
            let cut: String = text.chars().take(197).collect();
            format!("{cut}...")
        } else {
            text
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nil",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "an object",
        }
    }

    /// The number this value stands for: a number, a numeric string, or a list of
    /// exactly one such element.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::String(s) => special_number(s).or_else(|| s.trim().parse().ok()),
            Value::List(l) if l.len() == 1 => l[0].as_number(),
            _ => None,
        }
    }
}

fn special_number(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A number as people read it: integers without `.0`, Prometheus's spelling of the
/// non-finite ones.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Value::from_json_numbers)
    }
}

impl JsonSchema for Value {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MetricValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A provider's answer: any JSON; non-finite numbers as \"NaN\", \"+Inf\", \"-Inf\"."
        })
    }
}

/// A parsed condition, ready to be evaluated against answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Literal(Value),
    Result,
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Len,
    IsNaN,
    IsInf,
    Default,
    AsFloat,
    AsInt,
}

impl Function {
    fn by_name(name: &str) -> Option<Function> {
        Some(match name {
            "len" => Function::Len,
            "isNaN" => Function::IsNaN,
            "isInf" => Function::IsInf,
            "default" => Function::Default,
            "asFloat" => Function::AsFloat,
            "asInt" => Function::AsInt,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Function::Len => "len",
            Function::IsNaN => "isNaN",
            Function::IsInf => "isInf",
            Function::Default => "default",
            Function::AsFloat => "asFloat",
            Function::AsInt => "asInt",
        }
    }
    fn arity(self) -> usize {
        match self {
            Function::Default => 2,
            _ => 1,
        }
    }
}

/// A binary operator: comparisons and arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinaryOp {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Less => "<",
            BinaryOp::LessOrEqual => "<=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterOrEqual => ">=",
            BinaryOp::Equal => "==",
            BinaryOp::NotEqual => "!=",
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Remainder => "%",
        }
    }
    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Less
                | BinaryOp::LessOrEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterOrEqual
                | BinaryOp::Equal
                | BinaryOp::NotEqual
        )
    }
}

/// Why a condition did not parse; `column` is 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("empty condition; write e.g. `result < 0.01`")]
    Empty,
    #[error("at column {column}: expected {expected}, found {found}")]
    Unexpected {
        column: usize,
        expected: &'static str,
        found: String,
    },
    #[error("at column {column}: {text:?} is not a finite number")]
    BadNumber { column: usize, text: String },
    #[error("at column {column}: a string opened here is never closed")]
    UnclosedString { column: usize },
    #[error(
        "at column {column}: unknown name `{name}`; conditions know `result`, `true`, `false`, \
         `nil` and the functions len, isNaN, isInf, default, asFloat, asInt"
    )]
    UnknownName { column: usize, name: String },
    #[error("at column {column}: {name}() takes {expected} argument(s), got {found}")]
    WrongArity {
        column: usize,
        name: &'static str,
        expected: usize,
        found: usize,
    },
}

impl ConditionError {
    /// The 1-based column the error points at, when it points at one.
    pub fn column(&self) -> Option<usize> {
        match self {
            ConditionError::Empty => None,
            ConditionError::Unexpected { column, .. }
            | ConditionError::BadNumber { column, .. }
            | ConditionError::UnclosedString { column }
            | ConditionError::UnknownName { column, .. }
            | ConditionError::WrongArity { column, .. } => Some(*column),
        }
    }
}

/// Why a condition could not be decided for an answer: the condition does not apply to
/// what the provider answered. Counted as a measurement error, never as a success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Condition {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(ConditionError::Empty);
        }
        let end = text.chars().count() + 1;
        let mut parser = Parser {
            tokens,
            next: 0,
            end,
        };
        let expr = parser.or()?;
        match parser.peek() {
            None => Ok(Condition { expr }),
            Some((column, token)) => Err(ConditionError::Unexpected {
                column,
                expected: "an operator or the end",
                found: token.to_string(),
            }),
        }
    }

    /// Whether `result` satisfies the condition; an error when the condition does not
    /// apply to it or does not come out as a boolean.
    pub fn evaluate(&self, result: &Value) -> Result<bool, EvalError> {
        match eval(&self.expr, result)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError(format!(
                "the condition gives {} ({}), not true or false",
                other.kind(),
                other.display()
            ))),
        }
    }

    /// Evaluates against a plain number (the common case, and the old API).
    pub fn evaluate_number(&self, result: f64) -> Result<bool, EvalError> {
        self.evaluate(&Value::Number(result))
    }
}

/// Parses `text` and evaluates it against the number `result` in one call; a condition
/// that does not apply is `false`.
pub fn evaluate(text: &str, result: f64) -> Result<bool, ConditionError> {
    Condition::parse(text).map(|c| c.evaluate_number(result).unwrap_or(false))
}

fn eval(expr: &Expr, result: &Value) -> Result<Value, EvalError> {
    Ok(match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Result => result.clone(),
        Expr::Field(inner, name) => match eval(inner, result)? {
            Value::Map(mut m) => m.remove(name).unwrap_or(Value::Null),
            Value::Null => Value::Null,
            other => {
                return Err(EvalError(format!(
                    "`.{name}`: the value is {} ({}), not an object",
                    other.kind(),
                    other.display()
                )));
            }
        },
        Expr::Index(inner, index) => {
            let container = eval(inner, result)?;
            let index = eval(index, result)?;
            match (container, index) {
                (Value::List(l), i) => {
                    let n = i.as_number().ok_or_else(|| {
                        EvalError(format!("a list index must be a number, not {}", i.kind()))
                    })?;
                    if n < 0.0 || n.fract() != 0.0 || n as usize >= l.len() {
                        return Err(EvalError(format!(
                            "index {} is out of range: the list has {} element(s)",
                            format_number(n),
                            l.len()
                        )));
                    }
                    l[n as usize].clone()
                }
                (Value::Map(mut m), Value::String(k)) => m.remove(&k).unwrap_or(Value::Null),
                (other, _) => {
                    return Err(EvalError(format!(
                        "cannot index {} ({})",
                        other.kind(),
                        other.display()
                    )));
                }
            }
        }
        Expr::Call(f, args) => call(*f, args, result)?,
        Expr::Not(inner) => match eval(inner, result)? {
            Value::Bool(b) => Value::Bool(!b),
            other => {
                return Err(EvalError(format!(
                    "`!` needs true or false, not {} ({})",
                    other.kind(),
                    other.display()
                )));
            }
        },
        Expr::Negate(inner) => {
            let v = eval(inner, result)?;
            Value::Number(-number(&v, "`-`")?)
        }
        Expr::And(a, b) => {
            Value::Bool(boolean(&eval(a, result)?, "&&")? && { boolean(&eval(b, result)?, "&&")? })
        }
        Expr::Or(a, b) => {
            Value::Bool(boolean(&eval(a, result)?, "||")? || { boolean(&eval(b, result)?, "||")? })
        }
        Expr::Binary(op, a, b) => binary(*op, eval(a, result)?, eval(b, result)?)?,
    })
}

fn boolean(v: &Value, op: &str) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(EvalError(format!(
            "`{op}` joins true or false, not {} ({})",
            other.kind(),
            other.display()
        ))),
    }
}

fn number(v: &Value, what: &str) -> Result<f64, EvalError> {
    match v {
        // A string is a number only through asFloat(): "5" < 10 is a type error, as in expr.
        Value::String(_) => None,
        other => other.as_number(),
    }
    .ok_or_else(|| {
        EvalError(format!(
            "{what} needs a number, not {} ({})",
            v.kind(),
            v.display()
        ))
    })
}

fn binary(op: BinaryOp, a: Value, b: Value) -> Result<Value, EvalError> {
    if op.is_comparison() {
        // Equality also compares strings, booleans and nil.
        if matches!(op, BinaryOp::Equal | BinaryOp::NotEqual) {
            let same = match (&a, &b) {
                (Value::String(x), Value::String(y)) => Some(x == y),
                (Value::Bool(x), Value::Bool(y)) => Some(x == y),
                (Value::Null, Value::Null) => Some(true),
                (Value::Null, _) | (_, Value::Null) => Some(false),
                _ => None,
            };
            if let Some(same) = same {
                return Ok(Value::Bool(same == (op == BinaryOp::Equal)));
            }
        }
        if let (Value::String(x), Value::String(y)) = (&a, &b) {
            let ord = x.cmp(y);
            return Ok(Value::Bool(match op {
                BinaryOp::Less => ord.is_lt(),
                BinaryOp::LessOrEqual => ord.is_le(),
                BinaryOp::Greater => ord.is_gt(),
                _ => ord.is_ge(),
            }));
        }
        let what = format!("`{}`", op.symbol());
        let (x, y) = (number(&a, &what)?, number(&b, &what)?);
        return Ok(Value::Bool(match op {
            BinaryOp::Less => x < y,
            BinaryOp::LessOrEqual => x <= y,
            BinaryOp::Greater => x > y,
            BinaryOp::GreaterOrEqual => x >= y,
            BinaryOp::Equal => x == y,
            _ => x != y,
        }));
    }
    let what = format!("`{}`", op.symbol());
    let (x, y) = (number(&a, &what)?, number(&b, &what)?);
    Ok(Value::Number(match op {
        BinaryOp::Add => x + y,
        BinaryOp::Subtract => x - y,
        BinaryOp::Multiply => x * y,
        // IEEE 754: x/0 is ±Inf, 0/0 is NaN; conditions see them as such (isNaN, isInf).
        BinaryOp::Divide => x / y,
        _ => x % y,
    }))
}

fn call(f: Function, args: &[Expr], result: &Value) -> Result<Value, EvalError> {
    let first = eval(&args[0], result)?;
    Ok(match f {
        Function::Len => match &first {
            Value::List(l) => Value::Number(l.len() as f64),
            Value::Map(m) => Value::Number(m.len() as f64),
            Value::String(s) => Value::Number(s.chars().count() as f64),
            Value::Null => Value::Number(0.0),
            other => {
                return Err(EvalError(format!(
                    "len() needs a list, an object or a string, not {}",
                    other.kind()
                )));
            }
        },
        Function::IsNaN => Value::Bool(number(&first, "isNaN()")?.is_nan()),
        Function::IsInf => Value::Bool(number(&first, "isInf()")?.is_infinite()),
        Function::Default => match first {
            Value::Null => eval(&args[1], result)?,
            Value::List(l) if l.is_empty() => eval(&args[1], result)?,
            other => other,
        },
        Function::AsFloat | Function::AsInt => {
            let n = first.as_number().ok_or_else(|| {
                EvalError(format!(
                    "{}() cannot read a number from {} ({})",
                    f.name(),
                    first.kind(),
                    first.display()
                ))
            })?;
            Value::Number(if f == Function::AsInt { n.trunc() } else { n })
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Str(String),
    Name(String),
    Op(BinaryOp),
    And,
    Or,
    Not,
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Dot,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Number(n) => write!(f, "`{}`", format_number(*n)),
            Token::Str(s) => write!(f, "{s:?}"),
            Token::Name(n) => write!(f, "`{n}`"),
            Token::Op(op) => write!(f, "`{}`", op.symbol()),
            Token::And => f.write_str("`&&`"),
            Token::Or => f.write_str("`||`"),
            Token::Not => f.write_str("`!`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::OpenBracket => f.write_str("`[`"),
            Token::CloseBracket => f.write_str("`]`"),
            Token::Dot => f.write_str("`.`"),
            Token::Comma => f.write_str("`,`"),
        }
    }
}

/// Tokens with their 1-based columns.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ConditionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let column = i + 1;
        let (token, width) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('<', Some('=')) => (Token::Op(BinaryOp::LessOrEqual), 2),
            ('>', Some('=')) => (Token::Op(BinaryOp::GreaterOrEqual), 2),
            ('=', Some('=')) => (Token::Op(BinaryOp::Equal), 2),
            ('!', Some('=')) => (Token::Op(BinaryOp::NotEqual), 2),
            ('&', Some('&')) => (Token::And, 2),
            ('|', Some('|')) => (Token::Or, 2),
            ('<', _) => (Token::Op(BinaryOp::Less), 1),
            ('>', _) => (Token::Op(BinaryOp::Greater), 1),
            ('!', _) => (Token::Not, 1),
            ('+', _) => (Token::Op(BinaryOp::Add), 1),
            ('-', _) => (Token::Op(BinaryOp::Subtract), 1),
            ('*', _) => (Token::Op(BinaryOp::Multiply), 1),
            ('/', _) => (Token::Op(BinaryOp::Divide), 1),
            ('%', _) => (Token::Op(BinaryOp::Remainder), 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('[', _) => (Token::OpenBracket, 1),
            (']', _) => (Token::CloseBracket, 1),
            (',', _) => (Token::Comma, 1),
            ('.', Some(d)) if !d.is_ascii_digit() => (Token::Dot, 1),
            ('"' | '\'', _) => {
                let quote = c;
                let mut end = i + 1;
                let mut s = String::new();
                loop {
                    match chars.get(end) {
                        None => return Err(ConditionError::UnclosedString { column }),
                        Some(&ch) if ch == quote => break,
                        Some('\\') if end + 1 < chars.len() => {
                            s.push(chars[end + 1]);
                            end += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            end += 1;
                        }
                    }
                }
                (Token::Str(s), end + 1 - i)
            }
            (c, _) if c.is_ascii_digit() || c == '.' => {
                let mut end = i + 1;
                while end < chars.len()
                    && (chars[end].is_ascii_alphanumeric()
                        || chars[end] == '.'
                        || ((chars[end] == '-' || chars[end] == '+')
                            && matches!(chars[end - 1], 'e' | 'E')))
                {
                    end += 1;
                }
                let literal: String = chars[i..end].iter().collect();
                let value = literal
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or(ConditionError::BadNumber {
                        column,
                        text: literal,
                    })?;
                (Token::Number(value), end - i)
            }
            (c, _) if c.is_alphabetic() || c == '_' => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                let token = match word.as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    _ => Token::Name(word),
                };
                (token, end - i)
            }
            (c, _) => {
                return Err(ConditionError::Unexpected {
                    column,
                    expected: "`result`, a number, a function, an operator or a parenthesis",
                    found: format!("`{c}`"),
                });
            }
        };
        tokens.push((column, token));
        i += width;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// The column just past the text, for "found the end".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.next).map(|(p, t)| (*p, t))
    }

    fn take(&mut self, expected: &'static str) -> Result<(usize, Token), ConditionError> {
        match self.tokens.get(self.next) {
            Some((column, token)) => {
                self.next += 1;
                Ok((*column, token.clone()))
            }
            None => Err(ConditionError::Unexpected {
                column: self.end,
                expected,
                found: "the end".into(),
            }),
        }
    }

    fn expect(&mut self, want: Token, expected: &'static str) -> Result<(), ConditionError> {
        match self.take(expected)? {
            (_, t) if t == want => Ok(()),
            (column, found) => Err(ConditionError::Unexpected {
                column,
                expected,
                found: found.to_string(),
            }),
        }
    }

    fn or(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some((_, Token::Or))) {
            self.next += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.not()?;
        while matches!(self.peek(), Some((_, Token::And))) {
            self.next += 1;
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if matches!(self.peek(), Some((_, Token::Not))) {
            self.next += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ConditionError> {
        let left = self.sum()?;
        match self.peek() {
            Some((_, Token::Op(op))) if op.is_comparison() => {
                let op = *op;
                self.next += 1;
                let right = self.sum()?;
                Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
            }
            _ => Ok(left),
        }
    }

    fn sum(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.product()?;
        while let Some((_, Token::Op(op @ (BinaryOp::Add | BinaryOp::Subtract)))) = self.peek() {
            let op = *op;
            self.next += 1;
            let right = self.product()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.unary()?;
        while let Some((
            _,
            Token::Op(op @ (BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Remainder)),
        )) = self.peek()
        {
            let op = *op;
            self.next += 1;
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ConditionError> {
        if matches!(self.peek(), Some((_, Token::Op(BinaryOp::Subtract)))) {
            self.next += 1;
            return Ok(match self.unary()? {
                Expr::Literal(Value::Number(n)) => Expr::Literal(Value::Number(-n)),
                e => Expr::Negate(Box::new(e)),
            });
        }
        if matches!(self.peek(), Some((_, Token::Op(BinaryOp::Add)))) {
            self.next += 1;
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ConditionError> {
        let mut expr = self.primary()?;
        loop {
            match self.peek() {
                Some((_, Token::OpenBracket)) => {
                    self.next += 1;
                    let index = self.or()?;
                    self.expect(Token::CloseBracket, "`]`")?;
                    expr = Expr::Index(Box::new(expr), Box::new(index));
                }
                Some((_, Token::Dot)) => {
                    self.next += 1;
                    match self.take("a field name")? {
                        (_, Token::Name(name)) => expr = Expr::Field(Box::new(expr), name),
                        (column, found) => {
                            return Err(ConditionError::Unexpected {
                                column,
                                expected: "a field name",
                                found: found.to_string(),
                            });
                        }
                    }
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        const WHAT: &str = "`result`, a number, a string, a function or `(`";
        match self.take(WHAT)? {
            (_, Token::Number(n)) => Ok(Expr::Literal(Value::Number(n))),
            (_, Token::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            (_, Token::Open) => {
                let inner = self.or()?;
                self.expect(Token::Close, "`)`")?;
                Ok(inner)
            }
            (column, Token::Name(name)) => match name.as_str() {
                "result" => Ok(Expr::Result),
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "nil" | "null" => Ok(Expr::Literal(Value::Null)),
                _ => {
                    let Some(f) = Function::by_name(&name) else {
                        return Err(ConditionError::UnknownName { column, name });
                    };
                    self.expect(Token::Open, "`(` after a function name")?;
                    let mut args = vec![self.or()?];
                    while matches!(self.peek(), Some((_, Token::Comma))) {
                        self.next += 1;
                        args.push(self.or()?);
                    }
                    self.expect(Token::Close, "`,` or `)`")?;
                    if args.len() != f.arity() {
                        return Err(ConditionError::WrongArity {
                            column,
                            name: f.name(),
                            expected: f.arity(),
                            found: args.len(),
                        });
                    }
                    Ok(Expr::Call(f, args))
                }
            },
            (column, found) => Err(ConditionError::Unexpected {
                column,
                expected: WHAT,
                found: found.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, result: f64) -> bool {
        match evaluate(text, result) {
            Ok(v) => v,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn eval_json(text: &str, json: &str) -> Result<bool, EvalError> {
        let condition = match Condition::parse(text) {
            Ok(c) => c,
            Err(e) => panic!("{text:?} should parse: {e}"),
        };
        let value = Value::from_json(serde_json::from_str(json).expect("test JSON"));
        condition.evaluate(&value)
    }

    #[test]
    fn each_operator_compares_result_with_the_number() {
        assert!(eval("result < 0.01", 0.005));
        assert!(!eval("result < 0.01", 0.01));
        assert!(eval("result <= 0.01", 0.01));
        assert!(eval("result > 5", 6.0));
        assert!(!eval("result > 5", 5.0));
        assert!(eval("result >= 5", 5.0));
        assert!(eval("result == 1", 1.0));
        assert!(eval("result != 1", 2.0));
        assert!(eval("result>-1.5e2", -100.0));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // (r < 1 && r > 5) || r == 10: true only at 10.
        let text = "result < 1 && result > 5 || result == 10";
        assert!(eval(text, 10.0));
        assert!(!eval(text, 0.5));
        assert!(eval("result < 1 && (result > 5 || result < 0)", -1.0));
        assert!(!eval("result < 1 && (result > 5 || result < 0)", 0.5));
        assert!(eval("result < 1 and not (result > 5 or result < 0)", 0.5));
    }

    #[test]
    fn nan_satisfies_only_not_equal() {
        assert!(!eval("result < 1", f64::NAN));
        assert!(!eval("result >= 0", f64::NAN));
        assert!(eval("result != 0", f64::NAN));
        assert!(eval("isNaN(result) || result < 1", f64::NAN));
        assert!(!eval("isNaN(result)", 0.5));
        assert!(eval("isInf(result)", f64::INFINITY));
    }

    #[test]
    fn every_form_real_templates_use() {
        let cases: &[(&str, &str, bool)] = &[
            ("result[0] >= 0.95", "[0.97]", true),
            ("result[1] >= 0.95", "[0.97, 0.5]", false),
            ("len(result) == 0 || result[0] < 100", "[]", true),
            ("len(result) == 0 || result[0] < 100", "[150]", false),
            ("!result.degraded", r#"{"degraded": false}"#, true),
            ("result.completed == true", r#"{"completed": true}"#, true),
            ("result.completed", r#"{"completed": false}"#, false),
            ("result.status == 'ok'", r#"{"status": "ok"}"#, true),
            (
                "result.data.ratio < 0.1",
                r#"{"data": {"ratio": 0.05}}"#,
                true,
            ),
            ("default(result.errors, 0) < 3", "{}", true),
            ("default(result, 0) < 3", "null", true),
            ("asFloat(result) >= 0.95", r#""0.96""#, true),
            ("asInt(result) == 3", r#""3.7""#, true),
            (
                "result.errors / result.total < 0.01",
                r#"{"errors": 1, "total": 1000}"#,
                true,
            ),
            ("result * 100 - 1 < 4", "0.04", true),
            ("result < 0.01", "[0.005]", true),
            ("true", "0", true),
            ("result == nil", "null", true),
            ("result['p99'] < 0.3", r#"{"p99": 0.2}"#, true),
        ];
        for (text, json, want) in cases {
            assert_eq!(eval_json(text, json), Ok(*want), "{text} on {json}");
        }
    }

    #[test]
    fn a_condition_that_does_not_apply_is_an_error_not_a_verdict() {
        let cases: &[(&str, &str, &str)] = &[
            ("result.completed", "0.5", "not an object"),
            (
                "result[2] < 1",
                "[1, 2]",
                "index 2 is out of range: the list has 2",
            ),
            ("result < 1", r#""0.5""#, "needs a number, not a string"),
            ("result < 1", "[1, 2]", "needs a number, not a list"),
            ("result", "0.5", "not true or false"),
            ("!result", "1", "`!` needs true or false"),
            ("result.x < 1", r#"{"x": null}"#, "needs a number, not nil"),
        ];
        for (text, json, want) in cases {
            match eval_json(text, json) {
                Err(e) => assert!(e.0.contains(want), "{text} on {json}: {e} lacks {want:?}"),
                Ok(v) => panic!("{text} on {json} should not decide, gave {v}"),
            }
        }
    }

    #[test]
    fn malformed_conditions_name_the_column() {
        assert_eq!(Condition::parse("  "), Err(ConditionError::Empty));
        let cases = [
            ("result <", "at column 9: expected `result`, a number"),
            ("x < 1", "at column 1: unknown name `x`"),
            ("result < 1 &&", "at column 14: expected `result`"),
            (
                "result = 1",
                "at column 8: expected `result`, a number, a function, an operator",
            ),
            (
                "result < 1 result",
                "at column 12: expected an operator or the end",
            ),
            ("(result < 1", "at column 12: expected `)`, found the end"),
            (
                "result < 1.2.3",
                "at column 10: \"1.2.3\" is not a finite number",
            ),
            (
                "len(result, 1) > 0",
                "at column 1: len() takes 1 argument(s), got 2",
            ),
            (
                "result.status == 'ok",
                "at column 18: a string opened here is never closed",
            ),
            ("result[0 < 1", "at column 13: expected `]`, found the end"),
            (
                "isNaN result",
                "at column 7: expected `(` after a function name",
            ),
        ];
        for (text, expected) in cases {
            let err = match Condition::parse(text) {
                Ok(c) => panic!("{text:?} should not parse, got {c:?}"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(expected),
                "{text:?}: {err:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn values_round_trip_through_json_with_non_finite_numbers() {
        let v = Value::List(vec![
            Value::Number(f64::INFINITY),
            Value::Number(0.5),
            Value::String("x".into()),
        ]);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"["+Inf",0.5,"x"]"#);
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        let nan: Value = serde_json::from_str(r#""NaN""#).unwrap();
        assert!(matches!(nan, Value::Number(n) if n.is_nan()));
        assert_eq!(Value::Number(3.0).display(), "3");
        assert_eq!(Value::Number(0.25).display(), "0.25");
    }
}
