//! Numbers as the reports print them: fixed precision (so regenerated
//! reports are byte-identical) and short units.

/// Microseconds as a short human figure: `850µs`, `12.3ms`, `1.20s`.
pub fn us(v: u64) -> String {
    match v {
        0..=999 => format!("{v}µs"),
        1_000..=999_999 => format!("{:.1}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

/// Bytes as KiB/MiB.
pub fn bytes(v: f64) -> String {
    if v.abs() >= 1024.0 * 1024.0 {
        format!("{:.1}MiB", v / 1024.0 / 1024.0)
    } else if v.abs() >= 1024.0 {
        format!("{:.1}KiB", v / 1024.0)
    } else {
        format!("{v:.0}B")
    }
}

/// A setting: `20`, `0.5`, `2000` (at most 3 decimals, no trailing zeros).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A count or rate with thousands separators: `1,234,567`.
pub fn count(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let rounded = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in rounded.chars().enumerate() {
        if i > 0 && (rounded.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && rounded != "0" {
        out.insert(0, '-');
    }
    out
}

/// `value / base` as `1.23×`; `n/a` when the base is 0 or either is missing.
pub fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 && value.is_finite() && base.is_finite() {
        format!("{:.2}×", value / base)
    } else {
        "n/a".into()
    }
}

/// A relative change as a signed percentage: `+12.3 %`.
pub fn percent(change: f64) -> String {
    if change.is_infinite() {
        return if change > 0.0 { "+∞ %" } else { "-∞ %" }.into();
    }
    if change.is_nan() {
        return "n/a".into();
    }
    let s = format!("{:+.1} %", change * 100.0);
    if s == "-0.0 %" {
        "+0.0 %".into()
    } else {
        s
    }
}

/// A machine's memory: `23.5 GiB`.
pub fn memory(v: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if v as f64 >= GIB {
        format!("{:.1} GiB", v as f64 / GIB)
    } else {
        bytes(v as f64)
    }
}

/// CPU time per event: `44.08µs`.
pub fn cpu_us(v: f64) -> String {
    format!("{v:.2}µs")
}

/// A value with its ratio to the baseline, unless it is the baseline.
pub fn with_ratio(shown: String, value: f64, base: f64, is_base: bool) -> String {
    if is_base {
        shown
    } else {
        format!("{shown} ({})", ratio(value, base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable() {
        assert_eq!(num(20.0), "20");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(1.0 / 3.0), "0.333");
        assert_eq!(num(-0.0001), "0");
        assert_eq!(count(1_234_567.4), "1,234,567");
        assert_eq!(count(999.6), "1,000");
        assert_eq!(count(12.0), "12");
        assert_eq!(count(-1500.0), "-1,500");
        assert_eq!(ratio(3.0, 2.0), "1.50×");
        assert_eq!(ratio(3.0, 0.0), "n/a");
        assert_eq!(percent(0.123), "+12.3 %");
        assert_eq!(percent(-0.0001), "+0.0 %");
        assert_eq!(percent(f64::INFINITY), "+∞ %");
        assert_eq!(memory(25_276_502_016), "23.5 GiB");
        assert_eq!(with_ratio("2ms".into(), 2.0, 1.0, false), "2ms (2.00×)");
    }
}
