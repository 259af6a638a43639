//! The remap-vs-copy crossover of one remap variant (`remap`, `remap-per-page`, `remap-huge`):
//! the message size above which remapping is cheaper than copying (or below which it is),
//! with a 95% bootstrap confidence interval.
//!
//! At every size measured for both transports, `d = ln mean(remap) - ln mean(copy)` of a
//! cost (time per message, latency; the plain difference if a cost is not positive). The
//! crossover is where `d` first changes sign, interpolated linearly in log2(size): where the
//! two lines cross on the log-log chart. The interval comes from [`BOOTSTRAP_RESAMPLES`] resamples of every
//! size's repetitions (stats' fixed-seed resampling, so one input always gives one answer);
//! a resample without a sign change counts as a crossover beyond the measured range on its
//! side, so the interval can be open-ended. When `d` never changes sign there is no crossover,
//! and the answer says which transport is cheaper at every measured size.

use crate::units;
use pageflip_results::stats::{mean, resample_mean, SplitMix64, BOOTSTRAP_RESAMPLES};

/// Seed of the crossover bootstrap.
const CROSSOVER_SEED: u64 = 0xc405_5e70_0b0b_5eed;

/// The repetitions of one transport's cost at one message size.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeSamples {
    /// Message size, bytes.
    pub size: u64,
    /// The cost of every repetition (ns per message, ...).
    pub values: Vec<f64>,
}

/// What the crossover analysis found.
#[derive(Clone, Debug, PartialEq)]
pub enum CrossoverOutcome {
    /// `d` changes sign at `size` bytes.
    At {
        /// The crossover size, bytes (interpolated in log size).
        size: f64,
        /// True if remap is the cheaper one above `size` (the expected direction).
        remap_cheaper_above: bool,
        /// 95% bootstrap interval of the size, bytes; 0 or infinity where resamples put it
        /// beyond the smallest or largest size measured.
        ci95: (f64, f64),
    },
    /// Copy is cheaper at every measured size.
    CopyAlwaysCheaper,
    /// Remap is cheaper at every measured size.
    RemapAlwaysCheaper,
    /// Fewer than two sizes were measured for both transports.
    TooFewSizes,
}

/// The crossover analysis of one remap variant's cost against copy's.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossover {
    /// The remap variant's transport name (`remap`, `remap-huge`, ...).
    pub variant: String,
    /// Mean remap cost over mean copy cost at the largest size measured for both, if any.
    pub ratio_at_largest: Option<f64>,
    /// What was found.
    pub outcome: CrossoverOutcome,
    /// The sizes measured for both transports, ascending.
    pub sizes: Vec<u64>,
    /// Share of the bootstrap resamples in which `d` changed sign (0 to 1).
    pub resamples_crossing: f64,
}

/// Where `d` changes sign along the sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crossing {
    /// At this log2(size), remap being cheaper above it if the flag is set.
    At(f64, bool),
    /// Never: remap costs more at every size.
    RemapDearer,
    /// Never: remap costs less at every size.
    RemapCheaper,
}

/// The first sign change of `diffs` (remap - copy) over `log_sizes`, ascending.
fn crossing(log_sizes: &[f64], diffs: &[f64]) -> Crossing {
    for i in 0..diffs.len() {
        let d = diffs[i];
        if d == 0.0 {
            let above = diffs[i + 1..].iter().find(|d| **d != 0.0);
            let before = diffs[..i].iter().rev().find(|d| **d != 0.0);
            let cheaper_above = match (before, above) {
                (_, Some(a)) => *a < 0.0,
                (Some(b), None) => *b > 0.0,
                (None, None) => true,
            };
            return Crossing::At(log_sizes[i], cheaper_above);
        }
        if let Some(&next) = diffs.get(i + 1) {
            if next != 0.0 && (d > 0.0) != (next > 0.0) {
                let t = d / (d - next);
                let at = log_sizes[i] + t * (log_sizes[i + 1] - log_sizes[i]);
                return Crossing::At(at, d > 0.0);
            }
        }
    }
    if diffs.iter().all(|d| *d > 0.0) {
        Crossing::RemapDearer
    } else {
        Crossing::RemapCheaper
    }
}

/// The `q` quantile of sorted `xs` that may hold infinities: interpolated between two finite
/// neighbours, otherwise the nearer rank.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let pos = q * (xs.len() - 1) as f64;
    let (lo, hi) = (xs[pos.floor() as usize], xs[pos.ceil() as usize]);
    if lo.is_finite() && hi.is_finite() {
        lo + (hi - lo) * pos.fract()
    } else {
        xs[pos.round() as usize]
    }
}

/// Finds the crossover of remap variant `variant`'s costs `remap` and `copy`'s (any order of
/// sizes; sizes measured for only one transport, or without values, are left out).
pub fn find(variant: &str, remap: &[SizeSamples], copy: &[SizeSamples]) -> Crossover {
    let mut pairs: Vec<(u64, &[f64], &[f64])> = remap
        .iter()
        .filter(|r| !r.values.is_empty() && r.values.iter().all(|v| v.is_finite()))
        .filter_map(|r| {
            let c = copy.iter().find(|c| {
                c.size == r.size && !c.values.is_empty() && c.values.iter().all(|v| v.is_finite())
            })?;
            Some((r.size, r.values.as_slice(), c.values.as_slice()))
        })
        .collect();
    pairs.sort_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    let sizes: Vec<u64> = pairs.iter().map(|p| p.0).collect();
    let ratio_at_largest = pairs
        .last()
        .map(|(_, r, c)| mean(r) / mean(c))
        .filter(|r| r.is_finite());
    if sizes.len() < 2 || sizes[0] == 0 {
        return Crossover {
            variant: variant.to_string(),
            ratio_at_largest,
            outcome: CrossoverOutcome::TooFewSizes,
            sizes,
            resamples_crossing: 0.0,
        };
    }
    let log_sizes: Vec<f64> = sizes.iter().map(|&s| (s as f64).log2()).collect();
    let positive = pairs
        .iter()
        .all(|(_, r, c)| r.iter().chain(c.iter()).all(|v| *v > 0.0));
    let difference = |r: f64, c: f64| if positive { r.ln() - c.ln() } else { r - c };
    let diffs: Vec<f64> = pairs
        .iter()
        .map(|(_, r, c)| difference(mean(r), mean(c)))
        .collect();

    let mut rng = SplitMix64::new(CROSSOVER_SEED);
    let mut at: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let d: Vec<f64> = pairs
                .iter()
                .map(|(_, r, c)| {
                    let r = resample_mean(r, &mut rng);
                    difference(r, resample_mean(c, &mut rng))
                })
                .collect();
            match crossing(&log_sizes, &d) {
                Crossing::At(x, _) => x,
                Crossing::RemapDearer => f64::INFINITY,
                Crossing::RemapCheaper => f64::NEG_INFINITY,
            }
        })
        .collect();
    let resamples_crossing = at.iter().filter(|x| x.is_finite()).count() as f64 / at.len() as f64;
    at.sort_by(f64::total_cmp);

    let outcome = match crossing(&log_sizes, &diffs) {
        Crossing::At(x, remap_cheaper_above) => CrossoverOutcome::At {
            size: x.exp2(),
            remap_cheaper_above,
            ci95: (quantile(&at, 0.025).exp2(), quantile(&at, 0.975).exp2()),
        },
        Crossing::RemapDearer => CrossoverOutcome::CopyAlwaysCheaper,
        Crossing::RemapCheaper => CrossoverOutcome::RemapAlwaysCheaper,
    };
    Crossover {
        variant: variant.to_string(),
        ratio_at_largest,
        outcome,
        sizes,
        resamples_crossing,
    }
}

impl Crossover {
    /// One sentence saying what was found (`none in range: copy is cheaper than remap at
    /// every measured size (64 B to 64 KiB); remap costs 12.5x copy at 64 KiB`; `crossover
    /// at 9.1 KiB: remap is cheaper than copy above it (95% CI 6 KiB to 14 KiB; ...)`).
    pub fn describe(&self) -> String {
        let range = match (self.sizes.first(), self.sizes.last()) {
            (Some(&a), Some(&b)) => {
                format!("{} to {}", units::bytes(a as f64), units::bytes(b as f64))
            }
            _ => "no size".into(),
        };
        let v = self.variant.as_str();
        match &self.outcome {
            CrossoverOutcome::CopyAlwaysCheaper => format!(
                "none in range: copy is cheaper than {v} at every measured size ({range}); {}",
                self.ratio_text()
            ),
            CrossoverOutcome::RemapAlwaysCheaper => format!(
                "none in range: {v} is cheaper than copy at every measured size ({range}); {}",
                self.ratio_text()
            ),
            CrossoverOutcome::TooFewSizes => format!(
                "no crossover can be located: {v} and copy were measured together at {} \
                 size(s), two are needed",
                self.sizes.len()
            ),
            CrossoverOutcome::At {
                size,
                remap_cheaper_above,
                ci95,
            } => {
                let (cheaper, dearer) = if *remap_cheaper_above {
                    (v, "copy")
                } else {
                    ("copy", v)
                };
                format!(
                    "crossover at {}: {cheaper} is cheaper than {dearer} above it \
                     (95% CI {}; measured {range})",
                    units::bytes(*size),
                    ci_text(*ci95, &self.sizes),
                )
            }
        }
    }
}

impl Crossover {
    /// `12.5x copy at 64 KiB`: the variant's cost over copy's at the largest size measured
    /// for both, if there is one.
    fn ratio_part(&self) -> Option<String> {
        let (r, &size) = self.ratio_at_largest.zip(self.sizes.last())?;
        Some(format!(
            "{}x copy at {}",
            units::sig(r, 3),
            units::bytes(size as f64)
        ))
    }

    /// `remap costs 12.5x copy at 64 KiB` (or that no size has both).
    pub fn ratio_text(&self) -> String {
        match self.ratio_part() {
            Some(part) => format!("{} costs {part}", self.variant),
            None => format!("no size where both {} and copy were measured", self.variant),
        }
    }

    /// The chart's short form: `crossover 24 KiB (95% CI 20 KiB to 30 KiB)`, `none in
    /// range: 12.5x copy at 2 MiB`, `too few common sizes (1)`.
    pub fn short(&self) -> String {
        match &self.outcome {
            CrossoverOutcome::At { size, ci95, .. } => format!(
                "crossover {} (95% CI {})",
                units::bytes(*size),
                ci_text(*ci95, &self.sizes)
            ),
            CrossoverOutcome::CopyAlwaysCheaper | CrossoverOutcome::RemapAlwaysCheaper => {
                format!("none in range: {}", self.ratio_part().unwrap_or_default())
            }
            CrossoverOutcome::TooFewSizes => {
                format!("too few common sizes ({})", self.sizes.len())
            }
        }
    }
}

/// A crossover CI as text (`6 KiB to 14 KiB`, `6 KiB to above 64 KiB`): an end at 0 or
/// infinity lies beyond the smallest or largest of `sizes`.
pub fn ci_text(ci95: (f64, f64), sizes: &[u64]) -> String {
    let end = |v: f64| {
        if v == 0.0 {
            format!(
                "below {}",
                units::bytes(*sizes.first().unwrap_or(&0) as f64)
            )
        } else if v.is_infinite() {
            format!("above {}", units::bytes(*sizes.last().unwrap_or(&0) as f64))
        } else {
            units::bytes(v)
        }
    };
    format!("{} to {}", end(ci95.0), end(ci95.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repetitions around `mean`: mean ± spread, 10 of them.
    fn reps(mean: f64, spread: f64) -> Vec<f64> {
        (0..10)
            .map(|i| mean + spread * ((i % 5) as f64 - 2.0) / 2.0)
            .collect()
    }

    fn samples(f: impl Fn(u64) -> f64, spread: f64) -> Vec<SizeSamples> {
        [64u64, 256, 1024, 4096, 16384, 65536]
            .iter()
            .map(|&size| SizeSamples {
                size,
                values: reps(f(size), spread),
            })
            .collect()
    }

    #[test]
    fn a_known_crossover_is_found_with_its_interval() {
        // Copy costs 1 ns per byte + 1000; remap a flat 9192: equal at 8192 bytes.
        let copy = samples(|s| 1000.0 + s as f64, 50.0);
        let remap = samples(|_| 9192.0, 50.0);
        let c = find("remap", &remap, &copy);
        let CrossoverOutcome::At {
            size,
            remap_cheaper_above,
            ci95,
        } = c.outcome
        else {
            panic!("{c:?}")
        };
        assert!(remap_cheaper_above);
        // Between 4 KiB and 16 KiB, ln(remap / copy) goes from ln(9192 / 5096) = 0.590 to
        // ln(9192 / 17384) = -0.637: 0.481 of the way in log2 size, 2^12.962 = 7977 bytes
        // (where the straight log-log segments cross; the true curves cross at 8192).
        assert!((size - 7977.0).abs() < 5.0, "{size}");
        assert!(ci95.0 <= size && size <= ci95.1, "{ci95:?}");
        assert!(ci95.0 > 4096.0 && ci95.1 < 16384.0, "{ci95:?}");
        assert_eq!(c.resamples_crossing, 1.0);
        assert!(
            c.describe()
                .starts_with("crossover at 7.79 KiB: remap is cheaper"),
            "{}",
            c.describe()
        );
        // Deterministic.
        assert_eq!(c, find("remap", &remap, &copy));
    }

    #[test]
    fn copy_always_cheaper_is_no_crossover() {
        let copy = samples(|s| 100.0 + s as f64 / 100.0, 5.0);
        let remap = samples(|_| 100_000.0, 500.0);
        let c = find("remap", &remap, &copy);
        assert_eq!(c.outcome, CrossoverOutcome::CopyAlwaysCheaper);
        assert_eq!(c.resamples_crossing, 0.0);
        assert_eq!(
            c.describe(),
            "none in range: copy is cheaper than remap at every measured size (64 B to \
             64 KiB); remap costs 132x copy at 64 KiB"
        );
        assert_eq!(c.short(), "none in range: 132x copy at 64 KiB");
        let c = find("remap", &copy, &remap);
        assert_eq!(c.outcome, CrossoverOutcome::RemapAlwaysCheaper);
    }

    #[test]
    fn a_noisy_crossing_has_an_open_interval() {
        // Remap barely cheaper at the largest size, with wide spreads: many resamples see no
        // crossing, which puts the interval's upper end beyond the measured range.
        let copy = samples(|s| if s == 65536 { 1010.0 } else { 500.0 }, 400.0);
        let remap = samples(|_| 1000.0, 400.0);
        let c = find("remap", &remap, &copy);
        let CrossoverOutcome::At { ci95, .. } = c.outcome else {
            panic!("{c:?}")
        };
        assert_eq!(ci95.1, f64::INFINITY, "{c:?}");
        assert!(c.resamples_crossing < 0.95, "{c:?}");
        assert!(c.describe().contains("to above 64 KiB"), "{}", c.describe());
    }

    #[test]
    fn unmatched_or_single_sizes_are_too_few() {
        let copy = samples(|s| s as f64, 1.0);
        let remap = vec![SizeSamples {
            size: 4096,
            values: vec![1.0, 2.0],
        }];
        let c = find("remap", &remap, &copy);
        assert_eq!(c.outcome, CrossoverOutcome::TooFewSizes);
        assert_eq!(c.sizes, [4096]);
        assert!(c.describe().contains("two are needed"));
    }

    #[test]
    fn crossing_at_a_measured_size() {
        let logs = [6.0, 8.0, 10.0];
        assert_eq!(crossing(&logs, &[5.0, 0.0, -5.0]), Crossing::At(8.0, true));
        assert_eq!(crossing(&logs, &[-5.0, 0.0, 5.0]), Crossing::At(8.0, false));
        assert_eq!(crossing(&logs, &[2.0, -2.0, -5.0]), Crossing::At(7.0, true));
        assert_eq!(crossing(&logs, &[1.0, 2.0, 3.0]), Crossing::RemapDearer);
        assert_eq!(crossing(&logs, &[-1.0, -2.0, -3.0]), Crossing::RemapCheaper);
    }
}
