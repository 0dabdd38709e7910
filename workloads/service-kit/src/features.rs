//! Feature vectors as clients send them, and their validation.
//!
//! A request's features are first deserialized leniently into [`RawFeature`]s (any
//! JSON value is accepted and classified), then checked by [`validate_row`]. Doing
//! it in two steps lets the error name the exact element and what it was
//! (`features[3]: expected a finite number, got a string`), which serde's own
//! messages cannot do.
//!
//! Guarantees: a vector that passes is non-empty, has the expected width (when one
//! is given), and every value is finite *as an `f32`* — the model computes in `f32`,
//! so `1e39` (finite in JSON's `f64`, infinite in `f32`) is rejected too. JSON has no
//! NaN or infinity literal, so those arrive as strings (`"NaN"`) or out-of-range
//! numbers and are rejected on those grounds.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One element of a feature array before validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawFeature {
    /// A JSON number.
    Number(f64),
    /// Anything else, with a human name of what it was ("a string", "null", ...).
    NotANumber(&'static str),
}

impl<'de> Deserialize<'de> for RawFeature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawFeatureVisitor)
    }
}

struct RawFeatureVisitor;

impl<'de> Visitor<'de> for RawFeatureVisitor {
    type Value = RawFeature;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawFeature, E> {
        Ok(RawFeature::Number(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawFeature, E> {
        Ok(RawFeature::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawFeature, E> {
        Ok(RawFeature::Number(v as f64))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawFeature, E> {
        Ok(RawFeature::NotANumber("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawFeature, E> {
        Ok(RawFeature::NotANumber("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawFeature, E> {
        Ok(RawFeature::NotANumber("null"))
    }
    fn visit_none<E: de::Error>(self) -> Result<RawFeature, E> {
        Ok(RawFeature::NotANumber("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawFeature, A::Error> {
        // Drain it so the parser can carry on and report the element, not a syntax error.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawFeature::NotANumber("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFeature, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawFeature::NotANumber("an object"))
    }
}

/// Why a feature vector was refused. The `Display` text is what the client sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// No values at all.
    #[error("{field}: must not be empty")]
    Empty { field: String },
    /// The number of values differs from the model's input width.
    #[error("{field}: expected {expected} features, got {got}")]
    WrongWidth {
        field: String,
        expected: usize,
        got: usize,
    },
    /// An element is not a JSON number.
    #[error("{field}[{index}]: expected a finite number, got {what}")]
    NotANumber {
        field: String,
        index: usize,
        what: &'static str,
    },
    /// An element is a number that is not finite as a 32-bit float.
    #[error("{field}[{index}]: expected a finite number within ±3.4e38, got {value:e}")]
    NotFinite {
        field: String,
        index: usize,
        value: f64,
    },
}

impl FeatureError {
    /// A stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty { .. } => "empty_features",
            Self::WrongWidth { .. } => "wrong_width",
            Self::NotANumber { .. } => "not_a_number",
            Self::NotFinite { .. } => "not_finite",
        }
    }
}

/// Check one row and append its values to `out` as `f32`.
///
/// `field` names the row in messages (`features`, `instances[2]`); `width`, when
/// given, is the exact number of values required. On error `out` may hold a partial
/// row; callers discard it.
pub fn validate_row(
    field: &dyn fmt::Display,
    raw: &[RawFeature],
    width: Option<usize>,
    out: &mut Vec<f32>,
) -> Result<(), FeatureError> {
    if raw.is_empty() {
        return Err(FeatureError::Empty {
            field: field.to_string(),
        });
    }
    if let Some(expected) = width
        && raw.len() != expected
    {
        return Err(FeatureError::WrongWidth {
            field: field.to_string(),
            expected,
            got: raw.len(),
        });
    }
    out.reserve(raw.len());
    for (index, value) in raw.iter().enumerate() {
        match *value {
            RawFeature::Number(v) => {
                let narrowed = v as f32;
                if !narrowed.is_finite() {
                    return Err(FeatureError::NotFinite {
                        field: field.to_string(),
                        index,
                        value: v,
                    });
                }
                out.push(narrowed);
            }
            RawFeature::NotANumber(what) => {
                return Err(FeatureError::NotANumber {
                    field: field.to_string(),
                    index,
                    what,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, width: Option<usize>) -> Result<Vec<f32>, String> {
        let raw: Vec<RawFeature> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        validate_row(&"features", &raw, width, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn accepts_integers_and_floats() {
        assert_eq!(check("[1, -2.5, 3e2]", Some(3)), Ok(vec![1.0, -2.5, 300.0]));
    }

    #[test]
    fn names_the_offending_element() {
        assert_eq!(
            check(r#"[1, 2, 3, "NaN"]"#, None),
            Err("features[3]: expected a finite number, got a string".into())
        );
        assert_eq!(
            check("[1, null]", None),
            Err("features[1]: expected a finite number, got null".into())
        );
        assert_eq!(
            check("[[1], 2]", None),
            Err("features[0]: expected a finite number, got an array".into())
        );
        assert_eq!(
            check(r#"[{"a": 1}]"#, None),
            Err("features[0]: expected a finite number, got an object".into())
        );
        assert_eq!(
            check("[true]", None),
            Err("features[0]: expected a finite number, got a boolean".into())
        );
    }

    #[test]
    fn rejects_values_that_overflow_f32() {
        assert_eq!(
            check("[0, 1e39]", None),
            Err("features[1]: expected a finite number within ±3.4e38, got 1e39".into())
        );
    }

    #[test]
    fn rejects_wrong_width_and_empty() {
        assert_eq!(
            check("[1, 2]", Some(3)),
            Err("features: expected 3 features, got 2".into())
        );
        assert_eq!(
            check("[]", Some(3)),
            Err("features: must not be empty".into())
        );
    }
}
