//! Latency histograms as `result.json` stores them: headline figures plus
//! the whole HDR histogram, encoded, so results from several processes or
//! machines merge exactly.
//!
//! Latencies are kept in whole microseconds, never rounded to milliseconds:
//! loopback latencies are tens of microseconds and milliseconds would hide
//! them.
//!
//! Memory: a histogram with 3 significant figures holds 2,048 counters
//! (16 KiB) at least, growing to about 23,500 (184 KiB) for values up to an
//! hour. Histograms here grow only as far as the largest value recorded.

use hdrhistogram::serialization::{
    DeserializeError, Deserializer, Serializer, V2DeflateSerializeError, V2DeflateSerializer,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The finest latency the histograms distinguish, in µs.
pub const LOWEST_US: u64 = 1;
/// The largest latency recorded, in µs (one hour); larger values are clamped to it and counted.
pub const HIGHEST_US: u64 = 3_600 * 1_000_000;
/// Significant decimal figures kept for every value (0.1 % relative precision).
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// Why a histogram could not be stored or read back.
#[derive(Debug, Error)]
pub enum HistogramError {
    /// hdrhistogram could not serialize a histogram (a count beyond `i64::MAX`).
    #[error("could not serialize a latency histogram")]
    Serialize(#[from] V2DeflateSerializeError),
    /// The `encoded` field is not hex.
    #[error(
        "a histogram's `encoded` field is not hex ({reason} at byte {at}): \
         the result file was truncated or edited; write it again"
    )]
    Hex {
        /// What is wrong.
        reason: &'static str,
        /// The byte offset of the problem.
        at: usize,
    },
    /// The bytes are not an HdrHistogram V2 (or V2 + deflate) histogram.
    #[error("a histogram's `encoded` field is not an HdrHistogram V2 histogram")]
    Deserialize(#[from] DeserializeError),
    /// Holds values beyond an hour: not written by this load generator.
    #[error(
        "a histogram holds values up to {max} µs, beyond the {HIGHEST_US} µs this load \
         generator records: it was not written by this load generator"
    )]
    TooLarge {
        /// Its largest value.
        max: u64,
    },
    /// Recorded with another resolution: merging it would not be exact.
    #[error(
        "a histogram has a resolution of {lowest} µs and {figures} significant figures, \
         not {LOWEST_US} µs and {SIGNIFICANT_FIGURES}: it was not written by this load \
         generator and cannot be merged exactly"
    )]
    Incompatible {
        /// Its lowest discernible value.
        lowest: u64,
        /// Its significant figures.
        figures: u8,
    },
}

/// A new, empty latency histogram with the recorder's precision.
///
/// It resizes itself as larger values arrive (values are clamped to
/// [`HIGHEST_US`] before recording), so an idle one costs 16 KiB, not 184.
pub fn new_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(LOWEST_US, 2 * LOWEST_US, SIGNIFICANT_FIGURES)
        .expect("constant bounds: low >= 1, high >= 2 * low, figures <= 5");
    histogram.auto(true);
    histogram
}

/// A histogram's headline numbers, in µs, plus the histogram itself.
///
/// `encoded` is the histogram in HdrHistogram's V2 + deflate format (what
/// other HdrHistogram tools read), written as lower-case hex: the workspace
/// has no base64 crate, and hex is twice the bytes where base64 is 4/3, a
/// difference of a few KiB for a latency histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistogramSummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value (0 when empty).
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// The histogram: V2 + deflate, lower-case hex.
    pub encoded: String,
}

/// The summary of `histogram`, with the histogram encoded.
pub fn summarize(histogram: &Histogram<u64>) -> Result<HistogramSummary, HistogramError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(histogram, &mut bytes)?;
    Ok(HistogramSummary {
        count: histogram.len(),
        min: histogram.min(),
        p50: histogram.value_at_quantile(0.5),
        p90: histogram.value_at_quantile(0.9),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
        mean: histogram.mean(),
        encoded: to_hex(&bytes),
    })
}

impl HistogramSummary {
    /// The histogram back from `encoded` (V2 or V2 + deflate, either hex case).
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramError> {
        let bytes = from_hex(&self.encoded)?;
        Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
    }

    /// Decoded into a recorder histogram: checked to have the recorder's
    /// precision, so merging it stays exact, and able to grow.
    pub fn decode_compatible(&self) -> Result<Histogram<u64>, HistogramError> {
        let decoded = self.decode()?;
        if decoded.low() != LOWEST_US || decoded.sigfig() != SIGNIFICANT_FIGURES {
            return Err(HistogramError::Incompatible {
                lowest: decoded.low(),
                figures: decoded.sigfig(),
            });
        }
        let max = decoded.max();
        let too_large = HistogramError::TooLarge { max };
        if decoded.lowest_equivalent(max) > HIGHEST_US {
            return Err(too_large);
        }
        let mut histogram = new_histogram();
        histogram.add(&decoded).map_err(|_| too_large)?;
        Ok(histogram)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

fn from_hex(hex: &str) -> Result<Vec<u8>, HistogramError> {
    let digit = |at: usize, byte: u8| {
        char::from(byte)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(HistogramError::Hex {
                reason: "not a hex digit",
                at,
            })
    };
    hex.as_bytes()
        .chunks(2)
        .enumerate()
        .map(|(n, pair)| match *pair {
            [high, low] => Ok(digit(2 * n, high)? << 4 | digit(2 * n + 1, low)?),
            _ => Err(HistogramError::Hex {
                reason: "odd length",
                at: hex.len(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_numbers() {
        let mut h = new_histogram();
        for us in 1..=1_000 {
            h.record(us).expect("in range");
        }
        let s = summarize(&h).expect("serializable");
        assert_eq!(
            (s.count, s.min, s.p50, s.p90, s.max),
            (1_000, 1, 500, 900, 1_000)
        );
        assert!((s.mean - 500.5).abs() < 0.01);
        assert!(s
            .encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(s.decode().expect("decodes"), h);
        let upper = HistogramSummary {
            encoded: s.encoded.to_uppercase(),
            ..s.clone()
        };
        assert_eq!(upper.decode().expect("either case"), h);
        let empty = summarize(&new_histogram()).expect("serializable");
        assert_eq!((empty.count, empty.min, empty.max, empty.p99), (0, 0, 0, 0));
    }

    #[test]
    fn plain_v2_decodes_too() {
        let mut h = new_histogram();
        h.record(42).expect("in range");
        let mut bytes = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut bytes)
            .expect("serializable");
        let s = HistogramSummary {
            encoded: to_hex(&bytes),
            ..summarize(&h).expect("ok")
        };
        assert_eq!(s.decode().expect("decodes"), h);
    }

    #[test]
    fn bad_encodings_are_errors() {
        let s = summarize(&new_histogram()).expect("serializable");
        let with = |encoded: &str| HistogramSummary {
            encoded: encoded.into(),
            ..s.clone()
        };
        assert!(matches!(
            with("abc").decode(),
            Err(HistogramError::Hex { at: 3, .. })
        ));
        assert!(matches!(
            with("zz").decode(),
            Err(HistogramError::Hex { at: 0, .. })
        ));
        assert!(matches!(
            with("0011").decode(),
            Err(HistogramError::Deserialize(_))
        ));
    }
}
