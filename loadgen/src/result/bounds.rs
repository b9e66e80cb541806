//! The sane range of every number a user gives (a flag or a scenario file
//! field), defined once and used by both.
//!
//! A value outside its range is rejected with the range in the message,
//! never clamped: a silently changed setting would measure something else
//! than what was asked. The ranges also keep every derived duration finite
//! (`Duration::from_secs_f64` panics on overflow; `1 / 1e-300` seconds is one).

use std::fmt;

/// An inclusive range a setting must fall in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds<T> {
    pub min: T,
    pub max: T,
    /// Shown after the range: ` s`, ` events/s`, ` bytes`, or empty.
    pub unit: &'static str,
}

/// A number as a message shows it: `0.01`, `1000000`, but `1e-300`, not
/// three hundred zeros.
pub trait Figure: PartialOrd + Copy {
    fn show(self) -> String;
}

impl Figure for f64 {
    fn show(self) -> String {
        if self == 0.0 || (1e-4..1e15).contains(&self.abs()) || !self.is_finite() {
            self.to_string()
        } else {
            format!("{self:e}")
        }
    }
}

macro_rules! integer_figure {
    ($($t:ty),*) => {$(
        impl Figure for $t {
            fn show(self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_figure!(u32, u64, usize);

impl<T: Figure> Bounds<T> {
    pub const fn new(min: T, max: T, unit: &'static str) -> Self {
        Bounds { min, max, unit }
    }

    /// Whether `v` is in range (NaN never is: every comparison with it is false).
    pub fn contains(&self, v: T) -> bool {
        v >= self.min && v <= self.max
    }

    /// `v`, or why it is out of range: `must be at least 1 and at most 100 (got 0)`.
    pub fn check(&self, v: T) -> Result<T, String> {
        if self.contains(v) {
            Ok(v)
        } else {
            Err(format!("must be {self} (got {})", v.show()))
        }
    }

    /// `v` checked, the message naming the setting: `connections must be ...`.
    pub fn check_named(&self, name: &str, v: T) -> Result<T, String> {
        self.check(v).map_err(|e| format!("{name} {e}"))
    }
}

impl<T: Figure> fmt::Display for Bounds<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at least {} and at most {}{}",
            self.min.show(),
            self.max.show(),
            self.unit
        )
    }
}

/// Seconds in a day: the longest any phase of a run may last.
pub const DAY_S: f64 = 86_400.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_name_the_range() {
        let b = Bounds::new(0.01, 1e6, " events/s");
        assert_eq!(b.check(5.0), Ok(5.0));
        assert_eq!(
            b.check_named("rate_hz", 1e-300).unwrap_err(),
            "rate_hz must be at least 0.01 and at most 1000000 events/s (got 1e-300)"
        );
        assert!(b.check(f64::NAN).is_err());
        assert!(b.check(f64::INFINITY).is_err());
        assert_eq!(
            Bounds::new(1usize, 10, "").check(0).unwrap_err(),
            "must be at least 1 and at most 10 (got 0)"
        );
    }
}
