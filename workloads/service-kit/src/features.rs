//! Feature vectors as clients send them, and their validation.
//!
//! A request's features are deserialized leniently into a [`FeatureRow`] (each
//! element, any JSON value, is classified as a [`RawFeature`]), then checked by
//! [`FeatureRow::check`]. Doing it in two steps lets the error name the exact element
//! and what it was (`features[3]: expected a finite number, got a string`), which
//! serde's own messages cannot do. [`fast_row`] reads the common body shape without
//! serde, to the same row.
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

/// A feature array parsed in one pass: its values narrowed to `f32`, how many
/// elements it had, and the first that is not a number finite as an `f32` (with what
/// it was). [`FeatureRow::check`] then names the first problem. The raw elements are
/// not held, nor grown into a vector element by element (serde_json gives no length
/// up front): a `/predict` profile showed that growth and the extra pass of a
/// `Vec<RawFeature>`.
///
/// Deserializes from a JSON array only (anything else is a shape error, as for a
/// `Vec`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureRow {
    values: Vec<f32>,
    len: usize,
    first_bad: Option<(usize, Bad)>,
}

/// Why an element was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bad {
    NotANumber(&'static str),
    NotFinite(f64),
}

impl FeatureRow {
    /// Room for the widths served here (30 features) without growing.
    const CAPACITY: usize = 64;

    fn push(&mut self, value: RawFeature) {
        let index = self.len;
        self.len += 1;
        if self.first_bad.is_some() {
            return;
        }
        match value {
            RawFeature::Number(v) => {
                let narrowed = v as f32;
                if narrowed.is_finite() {
                    self.values.push(narrowed);
                } else {
                    self.first_bad = Some((index, Bad::NotFinite(v)));
                }
            }
            RawFeature::NotANumber(what) => self.first_bad = Some((index, Bad::NotANumber(what))),
        }
    }

    /// How many elements the array had.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values, if the row is non-empty, `width` long (when given) and every
    /// element a finite `f32`; else the first problem, in that order, naming `field`.
    pub fn check(
        self,
        field: &dyn fmt::Display,
        width: Option<usize>,
    ) -> Result<Vec<f32>, FeatureError> {
        self.problem(field, width)?;
        Ok(self.values)
    }

    /// [`check`](Self::check), appending the values to `out` (for batches).
    pub fn check_into(
        &self,
        field: &dyn fmt::Display,
        width: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(), FeatureError> {
        self.problem(field, width)?;
        out.extend_from_slice(&self.values);
        Ok(())
    }

    fn problem(&self, field: &dyn fmt::Display, width: Option<usize>) -> Result<(), FeatureError> {
        if self.len == 0 {
            return Err(FeatureError::Empty {
                field: field.to_string(),
            });
        }
        if let Some(expected) = width
            && self.len != expected
        {
            return Err(FeatureError::WrongWidth {
                field: field.to_string(),
                expected,
                got: self.len,
            });
        }
        match self.first_bad {
            None => Ok(()),
            Some((index, Bad::NotANumber(what))) => Err(FeatureError::NotANumber {
                field: field.to_string(),
                index,
                what,
            }),
            Some((index, Bad::NotFinite(value))) => Err(FeatureError::NotFinite {
                field: field.to_string(),
                index,
                value,
            }),
        }
    }
}

impl<'de> Deserialize<'de> for FeatureRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(FeatureRowVisitor)
    }
}

struct FeatureRowVisitor;

impl<'de> Visitor<'de> for FeatureRowVisitor {
    type Value = FeatureRow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What serde says for a `Vec`, so shape errors read as they did.
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FeatureRow, A::Error> {
        // A length hint from a format that has one is trusted only up to a bound: the
        // elements arrive anyway, and a huge claimed length must not allocate.
        let capacity = seq
            .size_hint()
            .unwrap_or(0)
            .clamp(FeatureRow::CAPACITY, 4096);
        let mut row = FeatureRow {
            values: Vec::with_capacity(capacity),
            ..FeatureRow::default()
        };
        while let Some(value) = seq.next_element::<RawFeature>()? {
            row.push(value);
        }
        Ok(row)
    }
}

/// The row of a body that is exactly `{"<key>": [<numbers>]}` (with whitespace
/// wherever JSON allows it), parsed without serde: the `/predict` hot path, where
/// serde_json's digit-by-digit number parsing was the largest share of the handler's
/// CPU in a profile. `None` for anything else (another key or a second one, an escape
/// in the key, an element that is not a plain number, a number that is not finite as
/// an `f32`, trailing bytes): the caller then parses the body with serde, which gives
/// the answer or the exact error. So a body this accepts means what serde would make
/// of it.
///
/// Numbers follow JSON's grammar exactly (no `+`, leading zeros, `.5`, `1.`, `NaN` or
/// `Infinity`) and are converted to `f64` with serde_json's own arithmetic (see
/// `Scanner::number`), then narrowed to `f32` like every feature: the values are the
/// very bits serde gives (the tests compare both on random bodies).
pub fn fast_row(body: &[u8], key: &str) -> Option<FeatureRow> {
    let mut p = Scanner { b: body, i: 0 };
    p.ws();
    p.expect(b'{')?;
    p.ws();
    p.expect(b'"')?;
    p.literal(key.as_bytes())?;
    p.expect(b'"')?;
    p.ws();
    p.expect(b':')?;
    p.ws();
    p.expect(b'[')?;
    p.ws();
    let mut values = Vec::with_capacity(FeatureRow::CAPACITY);
    if p.peek() == Some(b']') {
        p.i += 1;
    } else {
        loop {
            let value = p.number()?;
            #[allow(clippy::cast_possible_truncation)]
            let narrowed = value as f32;
            if !narrowed.is_finite() {
                return None;
            }
            values.push(narrowed);
            p.ws();
            match p.next()? {
                b',' => p.ws(),
                b']' => break,
                _ => return None,
            }
        }
    }
    p.ws();
    p.expect(b'}')?;
    p.ws();
    (p.i == body.len()).then_some(FeatureRow {
        len: values.len(),
        values,
        first_bad: None,
    })
}

struct Scanner<'b> {
    b: &'b [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let end = self.i.checked_add(text.len())?;
        (self.b.get(self.i..end)? == text).then(|| self.i = end)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn digit(&self) -> Option<u64> {
        match self.peek() {
            Some(c @ b'0'..=b'9') => Some(u64::from(c - b'0')),
            _ => None,
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as an `f64` computed
    /// exactly as serde_json computes it (without its `float_roundtrip` feature, which
    /// this workspace does not enable): the digits as a `u64`, then one multiplication
    /// or division by a power of ten. Numbers outside that path (more than 19 digits,
    /// an exponent beyond 22) are `None`, and serde reads them.
    fn number(&mut self) -> Option<f64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut significand: u64 = 0;
        let push = |significand: &mut u64, d: u64| -> Option<()> {
            *significand = significand.checked_mul(10)?.checked_add(d)?;
            Some(())
        };
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let Some(d) = self.digit() {
                    push(&mut significand, d)?;
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let mut exponent: i64 = 0;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integer = false;
            let first = self.i;
            while let Some(d) = self.digit() {
                push(&mut significand, d)?;
                exponent -= 1;
                self.i += 1;
            }
            if self.i == first {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            integer = false;
            let sign = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    -1
                }
                Some(b'+') => {
                    self.i += 1;
                    1
                }
                _ => 1,
            };
            let first = self.i;
            let mut exp: i64 = 0;
            while let Some(d) = self.digit() {
                // Far past any power in the table: serde reads such a number.
                exp = (exp * 10 + d as i64).min(1_000_000);
                self.i += 1;
            }
            if self.i == first {
                return None;
            }
            exponent += sign * exp;
        }
        #[allow(clippy::cast_precision_loss)]
        let mut f = significand as f64;
        if !integer {
            let pow = *POW10.get(usize::try_from(exponent.unsigned_abs()).ok()?)?;
            if exponent >= 0 {
                f *= pow;
            } else {
                f /= pow;
            }
        }
        Some(if negative { -f } else { f })
    }
}

/// The powers of ten that are exact in an `f64`, as serde_json's table starts.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of reading a row (raw elements collected first, then pushed; and the
    /// one-pass [`FeatureRow`]) must agree on every input, serde's messages included;
    /// the answer is theirs.
    fn check(json: &str, width: Option<usize>) -> Result<Vec<f32>, String> {
        let two_pass = (|| {
            let raw: Vec<RawFeature> = serde_json::from_str(json).map_err(|e| e.to_string())?;
            let mut row = FeatureRow::default();
            for value in raw {
                row.push(value);
            }
            row.check(&"features", width).map_err(|e| e.to_string())
        })();
        let one_pass = serde_json::from_str::<FeatureRow>(json)
            .map_err(|e| e.to_string())
            .and_then(|row| row.check(&"features", width).map_err(|e| e.to_string()));
        assert_eq!(one_pass, two_pass, "{json}");
        two_pass
    }

    #[test]
    fn a_row_that_is_not_an_array_is_a_shape_error_as_for_a_vec() {
        for json in ["5", "{\"a\": 1}", "\"1,2\"", "null"] {
            let err = check(json, None).unwrap_err();
            assert!(err.contains("expected a sequence"), "{json}: {err}");
        }
    }

    #[test]
    fn the_first_bad_element_is_named_and_the_count_includes_the_rest() {
        assert_eq!(
            check(r#"[1, "x", 1e39, 2]"#, None),
            Err("features[1]: expected a finite number, got a string".into())
        );
        // The width is checked before the elements, over every element sent.
        assert_eq!(
            check(r#"[1, "x", 3]"#, Some(2)),
            Err("features: expected 2 features, got 3".into())
        );
        assert_eq!(check("[1, 2, 3]", Some(3)), Ok(vec![1.0, 2.0, 3.0]));
        let wide: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let wide = format!("[{}]", wide.join(","));
        assert_eq!(check(&wide, Some(100)).map(|v| v.len()), Ok(100));
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

    /// What serde makes of a `{"features": ...}` body: the slow path of [`fast_row`].
    fn serde_row(body: &[u8]) -> Option<FeatureRow> {
        #[derive(serde::Deserialize)]
        struct Body {
            features: FeatureRow,
        }
        serde_json::from_slice::<Body>(body)
            .ok()
            .map(|b| b.features)
    }

    fn bits(row: &FeatureRow) -> (usize, Vec<u32>, bool) {
        (
            row.len,
            row.values.iter().map(|v| v.to_bits()).collect(),
            row.first_bad.is_some(),
        )
    }

    #[test]
    fn the_fast_path_reads_what_clients_send_as_serde_does() {
        for body in [
            r#"{"features": [13.640000343322754, 16.34000015258789, 0.0123, -5, 0, -0, 1e3, 2.5E-3, 4e+2]}"#,
            "{\"features\":[]}",
            " \t\r\n{ \"features\" :\n[ 1 , 2 ]\n} \n",
        ] {
            let fast = fast_row(body.as_bytes(), "features").expect(body);
            assert_eq!(
                bits(&fast),
                bits(&serde_row(body.as_bytes()).unwrap()),
                "{body}"
            );
        }
    }

    #[test]
    fn the_fast_path_leaves_everything_else_to_serde() {
        for body in [
            r#"{"features": [1, 2], "extra": 1}"#,
            r#"{"extra": 1, "features": [1, 2]}"#,
            r#"{"features": [1, 2], "features": [3]}"#,
            r#"{"feat\u0075res": [1]}"#,
            r#"{"features": [1, "2"]}"#,
            r#"{"features": [1, null]}"#,
            r#"{"features": [[1]]}"#,
            r#"{"features": [01]}"#,
            r#"{"features": [1.]}"#,
            r#"{"features": [.5]}"#,
            r#"{"features": [+1]}"#,
            r#"{"features": [-]}"#,
            r#"{"features": [1e]}"#,
            r#"{"features": [NaN]}"#,
            r#"{"features": [Infinity]}"#,
            r#"{"features": [1e39]}"#,
            r#"{"features": [1,]}"#,
            r#"{"features": [1 2]}"#,
            r#"{"features": [1]} x"#,
            r#"{"features": [1, 2}}"#,
            r#"{"features": [1, 2]]"#,
            r#"{"features": [1]"#,
            r#"{"features": 5}"#,
            r#"["features", [1]]"#,
            "",
        ] {
            assert!(fast_row(body.as_bytes(), "features").is_none(), "{body}");
        }
    }

    fn number_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<f32>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{}", f64::from(v))),
            any::<f32>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:e}")),
            (-1e6f64..1e6).prop_map(|v| format!("{v}")),
            (-1e40f64..1e40).prop_map(|v| format!("{v:E}")),
            any::<i64>().prop_map(|v| v.to_string()),
            (0u32..1000, 0u32..1000, -50i32..50).prop_map(|(a, b, e)| format!("{a}.{b:03}e{e}")),
        ]
    }

    fn whitespace() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[ \t\r\n]{0,2}").unwrap()
    }

    fn body() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            proptest::collection::vec((number_text(), whitespace(), whitespace()), 0..40),
            whitespace(),
        )
            .prop_map(|(numbers, ws)| {
                let items: Vec<String> = numbers
                    .into_iter()
                    .map(|(n, a, b)| format!("{a}{n}{b}"))
                    .collect();
                format!(
                    "{ws}{{{ws}\"features\"{ws}:{ws}[{}]{ws}}}{ws}",
                    items.join(",")
                )
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Bodies of the hot shape: what the fast path takes (all but numbers with
        /// more than 19 digits or an exponent past 22, and values not finite as an
        /// f32), it reads as exactly the bits serde reads.
        #[test]
        fn the_fast_path_agrees_with_serde_on_the_hot_shape(body in body()) {
            let slow = serde_row(body.as_bytes()).expect("serde reads the body");
            if let Some(fast) = fast_row(body.as_bytes(), "features") {
                proptest::prop_assert_eq!(bits(&fast), bits(&slow));
            }
        }

        /// Rows as clients send them (f32 features printed as f64s, as Python's json
        /// does with numpy's float32 values, in the magnitudes of real features): the
        /// fast path takes every one, with serde's bits.
        #[test]
        fn the_fast_path_takes_every_row_as_clients_send_it(
            values in proptest::collection::vec(-1e4f32..1e4, 1..64),
        ) {
            let items: Vec<String> = values.iter().map(|v| format!("{}", f64::from(*v))).collect();
            let body = format!("{{\"features\": [{}]}}", items.join(", "));
            let fast = fast_row(body.as_bytes(), "features");
            proptest::prop_assert!(fast.is_some(), "refused {}", body);
            let slow = serde_row(body.as_bytes()).expect("serde reads the body");
            proptest::prop_assert_eq!(bits(&fast.unwrap()), bits(&slow));
        }

        /// Whatever a byte changed anywhere does: what the fast path accepts, serde
        /// reads the same; everything else is left to serde.
        #[test]
        fn what_the_fast_path_accepts_serde_reads_the_same(
            body in body(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::sample::select(b"0123456789-+.eE ,[]{}:\"fx\\".to_vec()),
        ) {
            let mut bytes = body.into_bytes();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Some(fast) = fast_row(&bytes, "features") {
                let slow = serde_row(&bytes);
                proptest::prop_assert!(slow.is_some(), "serde refused {:?}", String::from_utf8_lossy(&bytes));
                proptest::prop_assert_eq!(bits(&fast), bits(&slow.unwrap()));
            }
        }
    }
}
