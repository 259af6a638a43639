//! Numbers as people read them: significant digits, and byte sizes, durations and ratios with
//! their units (chart ticks and report tables share these).

/// `v` with at most `digits` significant digits (at least 1), trailing zeros trimmed, no
/// exponent for the magnitudes a report shows (1e-4 to 1e12). NaN and infinities are written
/// as `NaN`, `inf` and `-inf`.
pub fn sig(v: f64, digits: u32) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1) as i32;
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" {
        "0".into()
    } else {
        text
    }
}

/// A byte count in B, KiB, MiB or GiB (`4 KiB`, `1.5 MiB`, `64 B`).
pub fn bytes(v: f64) -> String {
    scaled(
        v,
        &[
            (1024.0 * 1024.0 * 1024.0, "GiB"),
            (1024.0 * 1024.0, "MiB"),
            (1024.0, "KiB"),
            (1.0, "B"),
        ],
    )
}

/// A duration given in nanoseconds, in ns, µs, ms or s (`850 ns`, `34.9 µs`, `1.2 ms`).
pub fn nanos(v: f64) -> String {
    scaled(v, &[(1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns")])
}

/// A plain count or rate: up to 3 significant digits, with k and M beyond 10 000 (`0.031`,
/// `250`, `12k`, `3.4M`).
pub fn count(v: f64) -> String {
    if v.abs() >= 1e4 {
        scaled(v, &[(1e9, "G"), (1e6, "M"), (1e3, "k")]).replace(' ', "")
    } else {
        sig(v, 3)
    }
}

/// A relative change as a signed percentage (`+12.5%`, `-3%`, `0%`).
pub fn percent(v: f64) -> String {
    let p = sig(v * 100.0, 3);
    if v > 0.0 {
        format!("+{p}%")
    } else {
        format!("{p}%")
    }
}

/// `v` in the largest of `units` (factor, name; largest first) it reaches, 3 significant
/// digits; the last unit takes everything smaller.
fn scaled(v: f64, units: &[(f64, &str)]) -> String {
    let (factor, name) = units
        .iter()
        .find(|(f, _)| v.abs() >= *f)
        .or(units.last())
        .copied()
        .unwrap_or((1.0, ""));
    format!("{} {name}", sig(v / factor, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(sig(34.9123, 3), "34.9");
        assert_eq!(sig(0.031_25, 3), "0.0312");
        assert_eq!(sig(2.0, 4), "2");
        assert_eq!(sig(118_500.0, 3), "118500");
        assert_eq!(sig(-0.5, 2), "-0.5");
        assert_eq!(sig(0.0, 3), "0");
        assert_eq!(sig(-0.000_000_1, 2), "-0.0000001");
        assert_eq!(sig(f64::NAN, 3), "NaN");
        assert_eq!(sig(f64::INFINITY, 3), "inf");
    }

    #[test]
    fn units() {
        assert_eq!(bytes(64.0), "64 B");
        assert_eq!(bytes(4096.0), "4 KiB");
        assert_eq!(bytes(65536.0), "64 KiB");
        assert_eq!(bytes(1.5 * 1024.0 * 1024.0), "1.5 MiB");
        assert_eq!(nanos(850.0), "850 ns");
        assert_eq!(nanos(34_900.0), "34.9 µs");
        assert_eq!(nanos(1_200_000.0), "1.2 ms");
        assert_eq!(nanos(0.5), "0.5 ns");
        assert_eq!(count(0.031), "0.031");
        assert_eq!(count(12_000.0), "12k");
        assert_eq!(count(3_400_000.0), "3.4M");
        assert_eq!(percent(0.125), "+12.5%");
        assert_eq!(percent(-0.03), "-3%");
        assert_eq!(percent(0.0), "0%");
    }
}
