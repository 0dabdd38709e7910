//! Bad request bodies for the services' fuzz tests (included with `#[path]`):
//! random bytes, random JSON trees (deep, wide, huge and tiny numbers, strings),
//! truncated JSON, deep nesting beyond any parser's recursion limit, invalid UTF-8
//! inside strings, long number literals, and random content types.
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::Value;

/// A JSON number as text, including ones no float can hold (`1e400`, 300 digits).
pub fn number_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        proptest::collection::vec(0u8..10, 1..320),
        proptest::option::of(proptest::collection::vec(0u8..10, 1..40)),
        proptest::option::of((any::<bool>(), 0u32..2000)),
    )
        .prop_map(|(negative, int, frac, exp)| {
            let mut s = String::new();
            if negative {
                s.push('-');
            }
            let digits = |d: &[u8]| d.iter().map(|d| char::from(b'0' + d)).collect::<String>();
            let int = digits(&int);
            // JSON forbids leading zeros; keep the literal valid.
            s.push_str(int.trim_start_matches('0'));
            if s.is_empty() || s == "-" {
                s.push('0');
            }
            if let Some(frac) = frac {
                s.push('.');
                s.push_str(&digits(&frac));
            }
            if let Some((negative, exp)) = exp {
                s.push('e');
                if negative {
                    s.push('-');
                }
                s.push_str(&exp.to_string());
            }
            s
        })
}

/// Random JSON trees (up to depth 6), with the awkward numbers.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN/inf become null
        prop_oneof![
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(3.5e38),
            Just(-3.5e38)
        ]
        .prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 256, 40, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..40).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{0,8}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A body: bytes that are meant to reach every branch of the parsers.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..1024),
        // Random JSON, bare or in the expected field, whole or cut short.
        (json_value(), 0usize..3, any::<proptest::sample::Index>()).prop_map(|(v, wrap, cut)| {
            let text = match wrap {
                0 => v.to_string(),
                1 => serde_json::json!({ "features": v }).to_string(),
                _ => serde_json::json!({ "instances": v }).to_string(),
            };
            let mut bytes = text.into_bytes();
            if cut.index(4) == 0 && !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
            }
            bytes
        }),
        // Feature vectors of number literals, some beyond f64 or f32.
        proptest::collection::vec(number_text(), 0..40).prop_map(|n| format!(
            "{{\"features\": [{}]}}",
            n.join(",")
        )
        .into_bytes()),
        // Well-formed rows of plausible values, of every width around the model's
        // (so the width check, and the backend's pass-through of it, are reached).
        (
            proptest::collection::vec(-1e6f64..1e6, 0..64),
            any::<bool>()
        )
            .prop_map(|(row, batch)| {
                if batch {
                    serde_json::json!({ "instances": [row] })
                        .to_string()
                        .into_bytes()
                } else {
                    serde_json::json!({ "features": row })
                        .to_string()
                        .into_bytes()
                }
            }),
        // Nesting deeper than serde_json's recursion limit (128), or not.
        (1usize..600, any::<bool>()).prop_map(|(depth, field)| {
            let inner = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            if field {
                format!("{{\"features\": {inner}}}").into_bytes()
            } else {
                inner.into_bytes()
            }
        }),
        // Invalid UTF-8 inside a string and as a key.
        proptest::collection::vec(0x80u8..=0xff, 1..16).prop_map(|bad| {
            let mut b = b"{\"features\": [1, \"".to_vec();
            b.extend_from_slice(&bad);
            b.extend_from_slice(b"\"], \"");
            b.extend_from_slice(&bad);
            b.extend_from_slice(b"\": 1}");
            b
        }),
    ]
}

/// A content-type header value, or none.
pub fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("application/problem+json".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(Some("multipart/form-data; boundary=x".to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}
