//! One value out of an event's JSON by a JSON pointer (RFC 6901), and a
//! JSON number's text as an exact count of nanoseconds.
//!
//! This runs once per event on the hot path, so the document is never
//! built: a serde seed walks the pointer's path, skips every other member
//! unparsed (`IgnoredAny`) and borrows the value it finds as raw text. A
//! number is then read from its text, digit by digit, not through an
//! `f64`: a stamp in nanoseconds has 19 digits where an `f64` keeps about
//! 16, and milliseconds with a fraction (`performance.timeOrigin +
//! performance.now()`) must not round either.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::message::StampError;

/// A parsed JSON pointer: `/a/b~1c/0` is `a`, `b/c`, `0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    /// `""` (the whole document) or `/token/...`, with `~0` for `~` and `~1` for `/`.
    pub fn parse(text: &str) -> Result<Pointer, String> {
        if text.is_empty() {
            return Ok(Pointer {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "`{text}` is not a JSON pointer: it starts with `/`"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Ok(Pointer {
            text: text.to_string(),
            tokens,
        })
    }

    /// The pointer as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The raw JSON text of the value at this pointer, borrowed from
    /// `json`; `Ok(None)` when there is none; `Err` when `json` is not JSON.
    pub fn find<'a>(&self, json: &'a str) -> Result<Option<&'a RawValue>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let found = Seek(&self.tokens).deserialize(&mut de)?;
        de.end()?;
        Ok(found)
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Walks the rest of a pointer's tokens into a value.
struct Seek<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.0.split_first() {
            None => <&RawValue>::deserialize(d).map(Some),
            Some((head, rest)) => d.deserialize_any(Step { head, rest }),
        }
    }
}

/// One step down: the member named `head` of an object, or the element
/// at index `head` of an array; a scalar has neither.
struct Step<'p> {
    head: &'p str,
    rest: &'p [String],
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(matches) = map.next_key_seed(KeyIs(self.head))? {
            if matches && found.is_none() {
                found = map.next_value_seed(Seek(self.rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // RFC 6901: an index is `0` or digits without a leading zero.
        let index = match self.head.as_bytes() {
            [b'0'] => Some(0),
            [b'1'..=b'9', ..] => self.head.parse::<usize>().ok(),
            _ => None,
        };
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Seek(self.rest))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object's key is the wanted token, compared without copying it.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// A JSON value's text as a string, unescaped: borrowed when it has no
/// escapes; `None` when it is not a string.
pub fn as_string(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(s.into()),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Into::into),
    }
}

/// A decimal number's text (JSON syntax: `12`, `12.5`, `1.25e3`) in units
/// of 10^-`digits_to_ns` seconds... as nanoseconds, exactly: digits beyond
/// a nanosecond are truncated. Negative values and values past `u64` are
/// out of range.
pub fn decimal_to_ns(text: &str, digits_to_ns: u32) -> Result<u64, StampError> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('-') {
        // Only a negative zero is a time.
        return match decimal_to_ns(rest, digits_to_ns) {
            Ok(0) => Ok(0),
            Ok(_) => Err(StampError::OutOfRange),
            Err(e) => Err(e),
        };
    }
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => {
            let e: i64 = t[at + 1..].parse().map_err(|_| StampError::NotATime)?;
            (&t[..at], e)
        }
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(StampError::NotATime);
    }
    if mantissa.ends_with('.') {
        return Err(StampError::NotATime);
    }
    // value = digits × 10^shift, digits being int then frac.
    let shift = exponent
        .checked_sub(frac.len() as i64)
        .and_then(|s| s.checked_add(i64::from(digits_to_ns)))
        .ok_or(StampError::OutOfRange)?;
    let digits = int
        .bytes()
        .chain(frac.bytes())
        .map(|b| u128::from(b - b'0'));
    let count = int.len() + frac.len();
    let keep = if shift < 0 {
        count.saturating_sub(usize::try_from(-shift).unwrap_or(usize::MAX))
    } else {
        count
    };
    let mut value: u128 = 0;
    for d in digits.take(keep) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or(StampError::OutOfRange)?;
    }
    if shift > 0 && value != 0 {
        let scale = u32::try_from(shift)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .ok_or(StampError::OutOfRange)?;
        value = value.checked_mul(scale).ok_or(StampError::OutOfRange)?;
    }
    u64::try_from(value).map_err(|_| StampError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn find(ptr: &str, json: &str) -> Option<String> {
        Pointer::parse(ptr)
            .unwrap()
            .find(json)
            .unwrap()
            .map(|r| r.get().to_string())
    }

    #[test]
    fn pointers_find_nested_values_and_skip_the_rest() {
        let json = r#"{"a":{"x":[1,{"t":"s"}],"b/c":7,"t~":8},"t":1764400000123.456,"n":null}"#;
        assert_eq!(find("/t", json).as_deref(), Some("1764400000123.456"));
        assert_eq!(find("/a/b~1c", json).as_deref(), Some("7"));
        assert_eq!(find("/a/t~0", json).as_deref(), Some("8"));
        assert_eq!(find("/a/x/1/t", json).as_deref(), Some("\"s\""));
        assert_eq!(find("/a/x/01", json), None);
        assert_eq!(find("/missing", json), None);
        assert_eq!(find("/t/deeper", json), None);
        assert_eq!(find("/n", json).as_deref(), Some("null"));
        assert!(find("", "[1]").is_some());
        assert!(Pointer::parse("/t").unwrap().find("{not json").is_err());
        assert!(Pointer::parse("/t").unwrap().find("{} trailing").is_err());
        assert!(Pointer::parse("t").is_err());
        let escaped = r#"{"k\u0065y":"v\"w"}"#;
        let raw = Pointer::parse("/key")
            .unwrap()
            .find(escaped)
            .unwrap()
            .unwrap();
        assert_eq!(as_string(raw).as_deref(), Some("v\"w"));
    }

    #[test]
    fn numbers_become_exact_nanoseconds() {
        assert_eq!(
            decimal_to_ns("1764400000123456789", 0),
            Ok(1_764_400_000_123_456_789)
        );
        assert_eq!(
            decimal_to_ns("1764400000123.456", 6),
            Ok(1_764_400_000_123_456_000)
        );
        assert_eq!(
            decimal_to_ns("1764400000123.4567891", 6),
            Ok(1_764_400_000_123_456_789)
        );
        assert_eq!(
            decimal_to_ns("1764400000.5", 9),
            Ok(1_764_400_000_500_000_000)
        );
        assert_eq!(decimal_to_ns("1.7644e9", 9), Ok(1_764_400_000_000_000_000));
        assert_eq!(decimal_to_ns("17644E-4", 9), Ok(1_764_400_000));
        assert_eq!(decimal_to_ns("0", 9), Ok(0));
        assert_eq!(decimal_to_ns("-0.0", 9), Ok(0));
        assert_eq!(decimal_to_ns("-5", 0), Err(StampError::OutOfRange));
        assert_eq!(decimal_to_ns("1e30", 0), Err(StampError::OutOfRange));
        assert_eq!(
            decimal_to_ns("18446744073709551616", 0),
            Err(StampError::OutOfRange)
        );
        assert_eq!(
            decimal_to_ns("1e999999999999999999", 0),
            Err(StampError::OutOfRange)
        );
        assert_eq!(
            decimal_to_ns("1e99999999999999999999", 0),
            Err(StampError::NotATime),
            "an exponent past i64 is no number this parser reads"
        );
        for bad in ["", "abc", "1.", ".5", "1.2.3", "\"5\"", "true", "1e"] {
            assert_eq!(decimal_to_ns(bad, 0), Err(StampError::NotATime), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_integer_in_any_unit_is_exact(v in 0u64..=18_446_744_073, digits in 0u32..=9) {
            let ns = u128::from(v) * 10u128.pow(digits);
            let got = decimal_to_ns(&v.to_string(), digits);
            prop_assert_eq!(got.ok().map(u128::from), (ns <= u128::from(u64::MAX)).then_some(ns));
        }

        #[test]
        fn milliseconds_with_a_fraction_keep_every_digit(ms in 0u64..4_000_000_000_000, frac in 0u32..1_000_000) {
            let text = format!("{ms}.{frac:06}");
            let want = ms * 1_000_000 + u64::from(frac);
            prop_assert_eq!(decimal_to_ns(&text, 6), Ok(want));
        }

        #[test]
        fn garbage_never_panics(s in "\\PC{0,40}") {
            let _ = decimal_to_ns(&s, 6);
            let _ = Pointer::parse("/a/0").unwrap().find(&s);
        }
    }
}
