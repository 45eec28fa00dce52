//! Numbers in query strings, read the same way by every endpoint: a whole number in a
//! stated range, or a 400 that says which.

use std::ops::RangeInclusive;

use super::XrpcError;

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

fn out_of_range(name: &str, range: &RangeInclusive<u32>) -> XrpcError {
    XrpcError::invalid_request(format!(
        "{name} must be a whole number from {} to {}",
        range.start(),
        range.end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
