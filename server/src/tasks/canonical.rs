//! The dedupe key of a task input: its canonical JSON (object keys sorted at every
//! level, no insignificant whitespace), hashed so the index stays small whatever the input.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `value` with the keys of every object in sorted order, serialised compactly.
pub fn canonical_json(value: &Value) -> String {
    sorted(value).to_string()
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&object[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// SHA-256 (hex) of the canonical JSON.
pub fn dedupe_key(canonical: &str) -> String {
    format!("{:x}", Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn key_order_does_not_matter_at_any_depth() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"p": 2, "q": 1}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"p":2,"q":1}]},"b":1}"#
        );
        assert_eq!(
            dedupe_key(&canonical_json(&a)),
            dedupe_key(&canonical_json(&b))
        );
    }

    #[test]
    fn different_inputs_have_different_keys() {
        let keys = [
            json!({"a": 1}),
            json!({"a": "1"}),
            json!({"a": [1, 2]}),
            json!({"a": [2, 1]}),
        ]
        .iter()
        .map(|v| dedupe_key(&canonical_json(v)))
        .collect::<std::collections::HashSet<_>>();
        assert_eq!(keys.len(), 4, "array order and types are significant");
    }
}
