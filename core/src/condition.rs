//! Analysis conditions: the `successCondition` / `failureCondition` of an analysis
//! template, e.g. `result < 0.01` or `result >= 0.5 && result <= 2`.
//!
//! The grammar is deliberately tiny, so a condition means exactly what it reads as:
//!
//! ```text
//! condition  := conjunction ( "||" conjunction )*
//! conjunction := comparison ( "&&" comparison )*
//! comparison := "result" op number | "(" condition ")"
//! op         := "<" | "<=" | ">" | ">=" | "==" | "!="
//! ```
//!
//! `&&` binds tighter than `||`. Parsing is pure and total (every input gives a
//! [`Condition`] or a [`ConditionError`] naming the offending position); evaluation never
//! fails. A `NaN` measurement satisfies only `!=` comparisons, as in IEEE 754, so a
//! missing metric never counts as a success by accident.

use std::fmt;

/// A parsed condition, ready to be evaluated against measurements.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(Comparison, f64),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

/// A comparison operator between `result` and a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

/// Why a condition did not parse; `position` is a character offset into the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("empty condition; write e.g. `result < 0.01`")]
    Empty,
    #[error("at character {position}: expected {expected}, found {found}")]
    Unexpected {
        position: usize,
        expected: &'static str,
        found: String,
    },
    #[error("at character {position}: {text:?} is not a finite number")]
    BadNumber { position: usize, text: String },
}

impl Condition {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(ConditionError::Empty);
        }
        let mut parser = Parser { tokens, next: 0 };
        let condition = parser.disjunction()?;
        match parser.peek() {
            None => Ok(condition),
            Some((position, token)) => Err(ConditionError::Unexpected {
                position,
                expected: "`&&`, `||` or the end",
                found: token.to_string(),
            }),
        }
    }

    /// Whether a measurement satisfies the condition.
    pub fn evaluate(&self, result: f64) -> bool {
        match self {
            Condition::Compare(op, bound) => match op {
                Comparison::Less => result < *bound,
                Comparison::LessOrEqual => result <= *bound,
                Comparison::Greater => result > *bound,
                Comparison::GreaterOrEqual => result >= *bound,
                Comparison::Equal => result == *bound,
                Comparison::NotEqual => result != *bound,
            },
            Condition::And(a, b) => a.evaluate(result) && b.evaluate(result),
            Condition::Or(a, b) => a.evaluate(result) || b.evaluate(result),
        }
    }
}

/// Parses `text` and evaluates it against `result` in one call.
pub fn evaluate(text: &str, result: f64) -> Result<bool, ConditionError> {
    Condition::parse(text).map(|c| c.evaluate(result))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Result,
    Op(Comparison),
    Number(f64),
    And,
    Or,
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Result => f.write_str("`result`"),
            Token::Op(op) => write!(f, "`{}`", op.symbol()),
            Token::Number(n) => write!(f, "`{n}`"),
            Token::And => f.write_str("`&&`"),
            Token::Or => f.write_str("`||`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
        }
    }
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ConditionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        let token = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('<', Some('=')) => Token::Op(Comparison::LessOrEqual),
            ('>', Some('=')) => Token::Op(Comparison::GreaterOrEqual),
            ('=', Some('=')) => Token::Op(Comparison::Equal),
            ('!', Some('=')) => Token::Op(Comparison::NotEqual),
            ('&', Some('&')) => Token::And,
            ('|', Some('|')) => Token::Or,
            ('<', _) => Token::Op(Comparison::Less),
            ('>', _) => Token::Op(Comparison::Greater),
            ('(', _) => Token::Open,
            (')', _) => Token::Close,
            (c, _) if c.is_ascii_digit() || c == '.' || c == '-' || c == '+' => {
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
                        position: start,
                        text: literal,
                    })?;
                i = end;
                tokens.push((start, Token::Number(value)));
                continue;
            }
            (c, _) if c.is_alphabetic() || c == '_' => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                if word != "result" {
                    return Err(ConditionError::Unexpected {
                        position: start,
                        expected: "`result`",
                        found: format!("`{word}`"),
                    });
                }
                i = end;
                tokens.push((start, Token::Result));
                continue;
            }
            (c, _) => {
                return Err(ConditionError::Unexpected {
                    position: start,
                    expected: "`result`, a comparison, a number, `&&` or `||`",
                    found: format!("`{c}`"),
                });
            }
        };
        i += match token {
            Token::Op(Comparison::Less | Comparison::Greater) | Token::Open | Token::Close => 1,
            _ => 2,
        };
        tokens.push((start, token));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.next).map(|(p, t)| (*p, t))
    }

    fn end_position(&self) -> usize {
        self.tokens.last().map_or(0, |(p, _)| p + 1)
    }

    fn take(&mut self, expected: &'static str) -> Result<(usize, Token), ConditionError> {
        match self.tokens.get(self.next) {
            Some((position, token)) => {
                self.next += 1;
                Ok((*position, token.clone()))
            }
            None => Err(ConditionError::Unexpected {
                position: self.end_position(),
                expected,
                found: "the end".into(),
            }),
        }
    }

    fn disjunction(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.conjunction()?;
        while matches!(self.peek(), Some((_, Token::Or))) {
            self.next += 1;
            let right = self.conjunction()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.comparison()?;
        while matches!(self.peek(), Some((_, Token::And))) {
            self.next += 1;
            let right = self.comparison()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Condition, ConditionError> {
        match self.take("`result` or `(`")? {
            (_, Token::Open) => {
                let inner = self.disjunction()?;
                match self.take("`)`")? {
                    (_, Token::Close) => Ok(inner),
                    (position, found) => Err(ConditionError::Unexpected {
                        position,
                        expected: "`)`",
                        found: found.to_string(),
                    }),
                }
            }
            (_, Token::Result) => {
                let op = match self.take("a comparison (<, <=, >, >=, ==, !=)")? {
                    (_, Token::Op(op)) => op,
                    (position, found) => {
                        return Err(ConditionError::Unexpected {
                            position,
                            expected: "a comparison (<, <=, >, >=, ==, !=)",
                            found: found.to_string(),
                        });
                    }
                };
                match self.take("a number")? {
                    (_, Token::Number(n)) => Ok(Condition::Compare(op, n)),
                    (position, found) => Err(ConditionError::Unexpected {
                        position,
                        expected: "a number",
                        found: found.to_string(),
                    }),
                }
            }
            (position, found) => Err(ConditionError::Unexpected {
                position,
                expected: "`result` or `(`",
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
    }

    #[test]
    fn nan_satisfies_only_not_equal() {
        assert!(!eval("result < 1", f64::NAN));
        assert!(!eval("result >= 0", f64::NAN));
        assert!(eval("result != 0", f64::NAN));
    }

    #[test]
    fn malformed_conditions_name_the_position() {
        assert_eq!(Condition::parse("  "), Err(ConditionError::Empty));
        let cases = [
            (
                "result <",
                "at character 8: expected a number, found the end",
            ),
            ("x < 1", "expected `result`, found `x`"),
            ("result < 1 &&", "expected `result` or `(`, found the end"),
            ("result < abc", "expected `result`, found `abc`"),
            ("result = 1", "found `=`"),
            ("result < 1 result", "expected `&&`, `||` or the end"),
            ("(result < 1", "expected `)`, found the end"),
            ("result < 1.2.3", "\"1.2.3\" is not a finite number"),
            ("1 < result", "expected `result` or `(`, found `1`"),
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
}
