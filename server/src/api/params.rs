//! Query strings, read the same way by every endpoint: numbers (a whole number in a
//! stated range, or a 400 that says which), the `?wait=N` of task endpoints, and a query
//! as a bundle's or a task's arguments.

use std::ops::RangeInclusive;
use std::time::Duration;

use app::tasks::MAX_WAIT_SECS;
use serde_json::{Map, Value};

use super::XrpcError;

/// `?wait=N` as a duration (zero when absent), N at most [`MAX_WAIT_SECS`].
pub fn wait_param(query: Option<&str>) -> Result<Duration, XrpcError> {
    let seconds = number_param(query, "wait", 0..=MAX_WAIT_SECS, 0)?;
    Ok(Duration::from_secs(u64::from(seconds)))
}

/// The query's parameters as arguments, `wait` aside (it is ours): strings, or arrays
/// of strings for names given more than once.
pub fn query_args(query: Option<&str>) -> Value {
    let mut args = Map::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "wait" {
            continue;
        }
        let value = Value::String(value.into_owned());
        match args.get_mut(key.as_ref()) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
            None => {
                args.insert(key.into_owned(), value);
            }
        }
    }
    Value::Object(args)
}

/// `value` if it is in `range`; else a 400 naming `name` and the range.
pub fn bounded(name: &str, value: u32, range: RangeInclusive<u32>) -> Result<u32, XrpcError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(out_of_range(name, &range))
    }
}

/// The number `name` in the URL query `query`, `default` when it is absent.
pub fn number_param(
    query: Option<&str>,
    name: &str,
    range: RangeInclusive<u32>,
    default: u32,
) -> Result<u32, XrpcError> {
    let found = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name);
    match found {
        None => Ok(default),
        Some((_, value)) => value
            .parse()
            .map_err(|_| out_of_range(name, &range))
            .and_then(|value| bounded(name, value, range)),
    }
}

/// The optional cursor `name` of a query string: a whole number from 0 (an id to
/// continue after).
pub fn cursor_param(query: Option<&str>, name: &str) -> Result<Option<i64>, XrpcError> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| {
            value
                .parse::<i64>()
                .ok()
                .filter(|cursor| *cursor >= 0)
                .ok_or_else(|| {
                    XrpcError::invalid_request(format!(
                        "{name} must be a whole number from 0 (an id from an earlier answer)"
                    ))
                })
        })
        .transpose()
}

fn out_of_range(name: &str, range: &RangeInclusive<u32>) -> XrpcError {
    XrpcError::invalid_request(format!(
        "{name} must be a whole number from {} to {}",
        range.start(),
        range.end()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn query_parameters_become_string_arguments() {
        assert_eq!(
            query_args(Some("name=ada&n=2&wait=5")),
            json!({"name": "ada", "n": "2"})
        );
        assert_eq!(
            query_args(Some("tag=a&tag=b&tag=c")),
            json!({"tag": ["a", "b", "c"]})
        );
        assert_eq!(query_args(None), json!({}));
    }

    #[test]
    fn wait_is_bounded() {
        assert_eq!(wait_param(None).expect("none"), Duration::ZERO);
        assert_eq!(
            wait_param(Some("wait=5")).expect("5"),
            Duration::from_secs(5)
        );
        assert_eq!(
            wait_param(Some("x=1&wait=30")).expect("30"),
            Duration::from_secs(30)
        );
        assert!(wait_param(Some("wait=31")).is_err());
        assert!(wait_param(Some("wait=-1")).is_err());
        assert!(wait_param(Some("wait=soon")).is_err());
    }

    #[test]
    fn numbers_are_whole_and_in_range() {
        assert_eq!(number_param(None, "limit", 1..=100, 50).ok(), Some(50));
        assert_eq!(
            number_param(Some("a=1&limit=7"), "limit", 1..=100, 50).ok(),
            Some(7)
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=1.5",
            "limit=",
            "limit=9999999999999",
        ] {
            let err = number_param(Some(bad), "limit", 1..=100, 50).expect_err(bad);
            assert!(
                err.to_string()
                    .contains("limit must be a whole number from 1 to 100"),
                "{err}"
            );
        }
        assert!(bounded("limit", 100, 1..=100).is_ok());
    }
}
