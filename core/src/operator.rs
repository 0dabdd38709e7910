//! Operator overrides as values: parsing and formatting what an operator writes to the
//! inbox (an SSM parameter on AWS, a file locally).
//!
//! Two values per workload:
//! - the weight pin (`weight`): `N` (0-100), or JSON
//!   `{"weight": N, "reason": "...", "expires": "RFC3339"}`; it holds the canary weight
//!   at `N` while in force;
//! - the one-shot action (`action`): one of `promote`, `promote-full`, `abort`, `retry`,
//!   `pause`, `resume` (any case, surrounding whitespace ignored). Which write of it is new is the
//!   inbox's business (its version), not the value's.
//!
//! Guarantees: [`format_weight_pin`] and [`format_action`] produce exactly what
//! [`parse_weight_pin`] and [`parse_action`] read back; a value that does not parse is an
//! [`OverrideError`] that says what was expected (and never an ignored value).

use crate::observed::{OperatorActionKind, UndoOverride, WeightPin};
use crate::status::Timestamp;

/// The key of the weight pin under a workload's override prefix.
pub const WEIGHT_KEY: &str = "weight";
/// The key of the one-shot action under a workload's override prefix.
pub const ACTION_KEY: &str = "action";
/// The key of an undo under a workload's override prefix.
pub const UNDO_KEY: &str = "undo";

/// Why an override value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error(
        "{value:?} is neither a number nor {{\"weight\": N, \"reason\": .., \"expires\": RFC3339}}: {problem}"
    )]
    WeightSyntax { value: String, problem: String },
    #[error("expires {value:?} is not an RFC 3339 time: {problem}")]
    Expires { value: String, problem: String },
    #[error("weight {0} is not between 0 and 100")]
    WeightRange(u32),
    #[error(
        "{0:?} is not an operator action; write one of promote, promote-full, abort, retry, pause, resume"
    )]
    UnknownAction(String),
    #[error("{value:?} is not an undo: write {{\"revision\": HASH, \"from\": HASH}} ({problem})")]
    UndoSyntax { value: String, problem: String },
    #[error(
        "{0:?} is not an override; the keys under a workload are `weight`, `action` and `undo`"
    )]
    UnknownKey(String),
}

/// A weight override: `N`, or JSON `{"weight": N, "reason": "...", "expires": "RFC3339"}`.
///
/// ```
/// # use tugboat_core::operator::parse_weight_pin;
/// assert_eq!(parse_weight_pin(" 5\n").unwrap().weight, 5);
/// assert!(parse_weight_pin("150").is_err());
/// ```
pub fn parse_weight_pin(value: &str) -> Result<WeightPin, OverrideError> {
    let value = value.trim();
    let pin = if let Ok(weight) = value.parse::<u32>() {
        WeightPin {
            weight,
            reason: None,
            expires: None,
        }
    } else {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Json {
            weight: u32,
            #[serde(default)]
            reason: Option<String>,
            #[serde(default)]
            expires: Option<String>,
        }
        let json: Json = serde_json::from_str(value).map_err(|e| OverrideError::WeightSyntax {
            value: value.to_string(),
            problem: e.to_string(),
        })?;
        let expires = json.expires.map(|e| parse_time(&e)).transpose()?;
        WeightPin {
            weight: json.weight,
            reason: json.reason,
            expires,
        }
    };
    if pin.weight > 100 {
        return Err(OverrideError::WeightRange(pin.weight));
    }
    Ok(pin)
}

fn parse_time(value: &str) -> Result<Timestamp, OverrideError> {
    let t = humantime::parse_rfc3339_weak(value).map_err(|err| OverrideError::Expires {
        value: value.to_string(),
        problem: err.to_string(),
    })?;
    Ok(Timestamp(
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
    ))
}

/// The value [`parse_weight_pin`] reads back as `pin`: the bare number when there is
/// nothing else, JSON otherwise.
pub fn format_weight_pin(pin: &WeightPin) -> String {
    if pin.reason.is_none() && pin.expires.is_none() {
        return pin.weight.to_string();
    }
    let mut json = serde_json::json!({"weight": pin.weight});
    if let Some(reason) = &pin.reason {
        json["reason"] = serde_json::json!(reason);
    }
    if let Some(expires) = pin.expires {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(expires.0);
        json["expires"] = serde_json::json!(humantime::format_rfc3339_millis(at).to_string());
    }
    json.to_string()
}

/// An undo: JSON `{"revision": HASH, "from": HASH}`.
pub fn parse_undo(value: &str) -> Result<UndoOverride, OverrideError> {
    let undo: UndoOverride =
        serde_json::from_str(value.trim()).map_err(|e| OverrideError::UndoSyntax {
            value: value.trim().to_string(),
            problem: e.to_string(),
        })?;
    if undo.revision.is_empty() || undo.from.is_empty() {
        return Err(OverrideError::UndoSyntax {
            value: value.trim().to_string(),
            problem: "empty revision".into(),
        });
    }
    Ok(undo)
}

/// The value [`parse_undo`] reads back as `undo`.
pub fn format_undo(undo: &UndoOverride) -> String {
    serde_json::json!({"revision": undo.revision, "from": undo.from}).to_string()
}

/// A one-shot action word.
pub fn parse_action(value: &str) -> Result<OperatorActionKind, OverrideError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "promote" => Ok(OperatorActionKind::Promote),
        "promote-full" => Ok(OperatorActionKind::PromoteFull),
        "abort" => Ok(OperatorActionKind::Abort),
        "retry" => Ok(OperatorActionKind::Retry),
        "pause" => Ok(OperatorActionKind::Pause),
        "resume" => Ok(OperatorActionKind::Resume),
        _ => Err(OverrideError::UnknownAction(value.trim().to_string())),
    }
}

/// The word [`parse_action`] reads back as `kind`.
pub fn format_action(kind: OperatorActionKind) -> &'static str {
    match kind {
        OperatorActionKind::Promote => "promote",
        OperatorActionKind::PromoteFull => "promote-full",
        OperatorActionKind::Abort => "abort",
        OperatorActionKind::Retry => "retry",
        OperatorActionKind::Pause => "pause",
        OperatorActionKind::Resume => "resume",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_a_weight_pin_without_reason_or_expiry() {
        let pin = parse_weight_pin(" 0\n").expect("parses");
        assert_eq!(pin.weight, 0);
        assert_eq!(pin.reason, None);
        assert_eq!(pin.expires, None);
    }

    #[test]
    fn a_json_weight_pin_carries_reason_and_expiry() {
        let pin = parse_weight_pin(
            r#"{"weight": 5, "reason": "INC-42", "expires": "2026-01-01T00:00:00Z"}"#,
        )
        .expect("parses");
        assert_eq!(pin.weight, 5);
        assert_eq!(pin.reason.as_deref(), Some("INC-42"));
        assert_eq!(pin.expires, Some(Timestamp::from_secs(1_767_225_600)));
    }

    #[test]
    fn a_weight_above_100_is_refused_with_the_reason() {
        let err = parse_weight_pin("150").expect_err("out of range");
        assert!(err.to_string().contains("between 0 and 100"), "{err}");
    }

    #[test]
    fn a_weight_pin_that_is_not_json_says_what_was_expected() {
        let err = parse_weight_pin("fifty").expect_err("not a pin");
        assert!(err.to_string().contains("neither a number nor"), "{err}");
        let err = parse_weight_pin(r#"{"weight": 5, "expires": "soon"}"#).expect_err("bad time");
        assert!(matches!(err, OverrideError::Expires { .. }), "{err}");
    }

    #[test]
    fn operator_actions_parse_case_insensitively_and_unknown_ones_do_not() {
        assert_eq!(parse_action("Promote"), Ok(OperatorActionKind::Promote));
        assert_eq!(
            parse_action("rollback"),
            Err(OverrideError::UnknownAction("rollback".into()))
        );
    }

    #[test]
    fn formatted_values_parse_back_to_themselves() {
        let pins = [
            WeightPin {
                weight: 0,
                reason: None,
                expires: None,
            },
            WeightPin {
                weight: 40,
                reason: Some("INC-7 \"quoted\"".into()),
                expires: Some(Timestamp(1_767_225_600_123)),
            },
            WeightPin {
                weight: 100,
                reason: None,
                expires: Some(Timestamp::from_secs(1_767_225_600)),
            },
        ];
        for pin in pins {
            assert_eq!(parse_weight_pin(&format_weight_pin(&pin)), Ok(pin));
        }
        for kind in [
            OperatorActionKind::Promote,
            OperatorActionKind::PromoteFull,
            OperatorActionKind::Abort,
            OperatorActionKind::Retry,
            OperatorActionKind::Pause,
            OperatorActionKind::Resume,
        ] {
            assert_eq!(parse_action(format_action(kind)), Ok(kind));
        }
        let undo = UndoOverride {
            revision: "aaaa".into(),
            from: "bbbb".into(),
        };
        assert_eq!(parse_undo(&format_undo(&undo)), Ok(undo));
        assert!(parse_undo("aaaa").is_err());
    }
}
