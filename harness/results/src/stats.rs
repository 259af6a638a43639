//! The statistics of results and A/B comparison: summaries with a bootstrap confidence
//! interval, a permutation test, and the verdict rule of `report compare`.
//!
//! Everything here is hermetic and deterministic: the resampling uses a small fixed-seed PRNG
//! (splitmix64), so one input always gives one output, on every host and every run.
//!
//! The verdict rule is Firecracker's: a metric has *regressed* only if the difference is
//! statistically significant (permutation test, p < [`DEFAULT_ALPHA`] = 0.01) **and** larger
//! than the noise threshold (relative change of the mean beyond [`DEFAULT_NOISE_THRESHOLD`] =
//! 5%) in the bad direction. A significant but tiny change, or a large but noisy one, is
//! *unchanged*.

use serde::{Deserialize, Serialize};

/// Number of bootstrap resamples of [`Summary::of`] and [`compare`].
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Number of permutation rounds [`compare`] runs (p-values are multiples of 1 / 10 000).
pub const PERMUTATION_ROUNDS: usize = 9999;

/// Default significance level of [`compare`]: a regression needs p < 0.01.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// Default noise threshold of [`compare`]: a regression needs a relative change above 5%.
pub const DEFAULT_NOISE_THRESHOLD: f64 = 0.05;

/// Seed of the bootstrap of [`Summary::of`].
const SUMMARY_SEED: u64 = 0x5eed_0f5a_3a1e;

/// Seed of the permutation test of [`compare`].
const PERMUTATION_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Seed of the effect-size bootstrap of [`compare`].
const EFFECT_SEED: u64 = 0xc0ff_ee00_d15e_a5e5;

pub use pageflip_abi::splitmix::SplitMix64;

/// The arithmetic mean of `xs` (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The `q` quantile (0..=1) of sorted `xs` by linear interpolation between closest ranks.
fn quantile_sorted(xs: &[f64], q: f64) -> f64 {
    let pos = q * (xs.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

/// The central 95% interval of `stats` (sorted in place).
fn percentile_ci(stats: &mut [f64]) -> (f64, f64) {
    stats.sort_by(f64::total_cmp);
    (quantile_sorted(stats, 0.025), quantile_sorted(stats, 0.975))
}

/// Mean of a bootstrap resample of `xs` (with replacement, same size).
pub fn resample_mean(xs: &[f64], rng: &mut SplitMix64) -> f64 {
    (0..xs.len())
        .map(|_| xs[rng.below(xs.len() as u64) as usize])
        .sum::<f64>()
        / xs.len() as f64
}

/// Relative change of `b` over `a`: `(b - a) / |a|`; 0 when both are 0, ±infinity when only
/// `a` is.
fn relative(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (b - a) / a.abs()
    }
}

/// Descriptive statistics of one metric over the repetitions of a case.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (mean of the two middle values for an even `n`).
    pub median: f64,
    /// Sample standard deviation (divisor `n - 1`); 0 for `n < 2`.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 95% confidence interval of the mean: percentile bootstrap with
    /// [`BOOTSTRAP_RESAMPLES`] resamples and a fixed seed. `(mean, mean)` for `n < 2`.
    pub ci95: (f64, f64),
}

impl Summary {
    /// Summarizes `xs`. An empty slice gives `n = 0` and NaN for every statistic.
    pub fn of(xs: &[f64]) -> Summary {
        let n = xs.len();
        if n == 0 {
            return Summary {
                n,
                mean: f64::NAN,
                median: f64::NAN,
                std: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                ci95: (f64::NAN, f64::NAN),
            };
        }
        let mut sorted = xs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let m = mean(xs);
        let std = if n < 2 {
            0.0
        } else {
            (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64).sqrt()
        };
        let ci95 = if n < 2 {
            (m, m)
        } else {
            let mut rng = SplitMix64::new(SUMMARY_SEED);
            let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
                .map(|_| resample_mean(xs, &mut rng))
                .collect();
            percentile_ci(&mut means)
        };
        Summary {
            n,
            mean: m,
            median: quantile_sorted(&sorted, 0.5),
            std,
            min: sorted[0],
            max: sorted[n - 1],
            ci95,
        }
    }
}

/// Two-sided permutation test of the difference of means of `a` and `b`: the share of
/// `rounds` random relabellings of the pooled values whose |difference of means| is at least
/// the observed one, with the +1 correction, `(count + 1) / (rounds + 1)`, so p is never 0.
/// Deterministic for a given `seed`. Returns 1 when either sample is empty or `rounds` is 0.
pub fn permutation_test(a: &[f64], b: &[f64], rounds: usize, seed: u64) -> f64 {
    if a.is_empty() || b.is_empty() || rounds == 0 {
        return 1.0;
    }
    let observed = (mean(b) - mean(a)).abs();
    // Sums are compared rather than means (fewer divisions); a tiny tolerance keeps a
    // relabelling that ties the observed difference from losing to rounding.
    let tolerance = observed * 1e-12;
    let mut pool: Vec<f64> = a.iter().chain(b).copied().collect();
    let total: f64 = pool.iter().sum();
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let mut rng = SplitMix64::new(seed);
    let mut count = 0usize;
    for _ in 0..rounds {
        // Partial Fisher-Yates: only the first |a| positions need to be random.
        for i in 0..a.len() {
            let j = i + rng.below((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        let sa: f64 = pool[..a.len()].iter().sum();
        let diff = ((total - sa) / nb - sa / na).abs();
        if diff >= observed - tolerance {
            count += 1;
        }
    }
    (count + 1) as f64 / (rounds + 1) as f64
}

/// The smallest p-value [`permutation_test`] can give with `rounds` rounds for samples of
/// `n_a` and `n_b` values — its resolution, reached when every relabelling but the observed one
/// (and, for `n_a == n_b`, its mirror image) gives a smaller difference of means.
///
/// The exact test over all `C(n_a + n_b, n_a)` relabellings cannot go below
/// `2 / C(n_a + n_b, n_a)` for equal sizes (`1 / C(..)` otherwise), and the sampled test not
/// below `1 / (rounds + 1)`; the larger of the two is returned. 3 vs 3 values: 0.1; 4 vs 4:
/// 0.029; 5 vs 5: 0.0079; 7 vs 7: 0.0006. A test at level `alpha` can only find a difference if
/// this is below `alpha`. 1 when either sample is empty or `rounds` is 0.
pub fn smallest_p_value(n_a: usize, n_b: usize, rounds: usize) -> f64 {
    if n_a == 0 || n_b == 0 || rounds == 0 {
        return 1.0;
    }
    let (n, k) = (n_a + n_b, n_a.min(n_b));
    // C(n, k) as a running product; f64 keeps it finite far beyond any repetition count.
    let relabellings = (1..=k).fold(1.0f64, |c, i| c * (n - k + i) as f64 / i as f64);
    let extreme = if n_a == n_b { 2.0 } else { 1.0 };
    (extreme / relabellings)
        .max(1.0 / (rounds + 1) as f64)
        .min(1.0)
}

/// What an A/B comparison concluded about one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly better by more than the noise threshold.
    Improved,
    /// Significantly worse by more than the noise threshold.
    Regressed,
    /// Neither: not significant, or within the noise threshold.
    Unchanged,
}

/// The comparison of one metric between builds A (baseline) and B (candidate).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The verdict (see [`compare`] for the rule).
    pub verdict: Verdict,
    /// Relative change of B's mean over A's: `(mean_b - mean_a) / |mean_a|` (0.2 = 20% more).
    pub relative_change: f64,
    /// Two-sided permutation-test p-value of the difference of means.
    pub p_value: f64,
    /// 95% percentile-bootstrap interval of the relative change (A and B resampled
    /// independently, [`BOOTSTRAP_RESAMPLES`] times, fixed seed).
    pub effect_ci95: (f64, f64),
}

/// Compares the repetitions `a` (baseline) and `b` (candidate) of one metric.
///
/// The rule (Firecracker's, with the defaults [`DEFAULT_NOISE_THRESHOLD`] = 0.05 and
/// [`DEFAULT_ALPHA`] = 0.01): the verdict is [`Verdict::Regressed`] only if the permutation
/// test gives `p < alpha` **and** `|relative_change| > noise_threshold` in the bad direction —
/// down for a metric where `higher_is_better` (throughput), up otherwise (latency, exits).
/// [`Verdict::Improved`] is the same in the good direction; anything else is
/// [`Verdict::Unchanged`]. The permutation test runs [`PERMUTATION_ROUNDS`] rounds, so the
/// smallest p-value is 1 / 10 000. Deterministic: fixed seeds throughout.
pub fn compare(
    a: &[f64],
    b: &[f64],
    noise_threshold: f64,
    alpha: f64,
    higher_is_better: bool,
) -> Comparison {
    if a.is_empty() || b.is_empty() {
        return Comparison {
            verdict: Verdict::Unchanged,
            relative_change: f64::NAN,
            p_value: 1.0,
            effect_ci95: (f64::NAN, f64::NAN),
        };
    }
    let relative_change = relative(mean(a), mean(b));
    let p_value = permutation_test(a, b, PERMUTATION_ROUNDS, PERMUTATION_SEED);
    let mut rng = SplitMix64::new(EFFECT_SEED);
    let mut effects: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let ma = resample_mean(a, &mut rng);
            let mb = resample_mean(b, &mut rng);
            relative(ma, mb)
        })
        .collect();
    let effect_ci95 = percentile_ci(&mut effects);
    let better = if higher_is_better {
        relative_change
    } else {
        -relative_change
    };
    let verdict = if p_value >= alpha || relative_change.abs() <= noise_threshold {
        Verdict::Unchanged
    } else if better > 0.0 {
        Verdict::Improved
    } else {
        Verdict::Regressed
    };
    Comparison {
        verdict,
        relative_change,
        p_value,
        effect_ci95,
    }
}

/// Deterministic samplers for statistical tests, in this crate and in others (feature
/// `test-utils`).
#[cfg(any(test, feature = "test-utils"))]
pub mod testing {
    use super::SplitMix64;

    /// `n` draws of a normal distribution (Box-Muller on splitmix64): deterministic synthetic
    /// repetitions.
    pub fn normal(n: usize, mu: f64, sigma: f64, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (0..n)
            .map(|_| {
                let u1 = 1.0 - unit(); // (0, 1]: ln is finite
                let u2 = unit();
                mu + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::normal;
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn summary_of_known_values() {
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.n, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.median, 4.5));
        assert!(close(s.std, (32.0f64 / 7.0).sqrt()), "std {}", s.std);
        assert_eq!((s.min, s.max), (2.0, 9.0));

        let odd = Summary::of(&[3.0, 1.0, 2.0]);
        assert!(close(odd.median, 2.0) && close(odd.mean, 2.0) && close(odd.std, 1.0));
    }

    #[test]
    fn summary_of_tiny_inputs() {
        let one = Summary::of(&[7.5]);
        assert_eq!(
            (one.n, one.mean, one.median, one.std, one.ci95),
            (1, 7.5, 7.5, 0.0, (7.5, 7.5))
        );
        let none = Summary::of(&[]);
        assert_eq!(none.n, 0);
        assert!(none.mean.is_nan() && none.ci95.0.is_nan());
    }

    #[test]
    fn summary_is_deterministic() {
        let xs = normal(50, 10.0, 2.0, 1);
        assert_eq!(Summary::of(&xs), Summary::of(&xs));
    }

    #[test]
    fn ci_contains_the_mean_and_shrinks_with_n() {
        let small = Summary::of(&normal(10, 100.0, 10.0, 7));
        let large = Summary::of(&normal(1000, 100.0, 10.0, 7));
        for s in [small, large] {
            assert!(s.ci95.0 < s.mean && s.mean < s.ci95.1, "{s:?}");
            assert!(s.ci95.0 >= s.min && s.ci95.1 <= s.max, "{s:?}");
        }
        let (ws, wl) = (small.ci95.1 - small.ci95.0, large.ci95.1 - large.ci95.0);
        // The width goes as 1/sqrt(n): 100 times the values, about a tenth of the width.
        assert!(wl < ws / 4.0, "width {ws} at n=10, {wl} at n=1000");
        // And it is about right: 2 * 1.96 * sigma / sqrt(n) = 1.24 at n = 1000.
        assert!((1.0..1.5).contains(&wl), "width {wl} at n=1000");
        // The true mean is inside the large-sample interval.
        assert!(large.ci95.0 < 100.0 && 100.0 < large.ci95.1, "{large:?}");
    }

    #[test]
    fn permutation_test_detects_a_shift() {
        let a = normal(30, 100.0, 5.0, 11);
        let b = normal(30, 110.0, 5.0, 12);
        let p = permutation_test(&a, &b, 5000, 3);
        assert!(p < 0.01, "p = {p}");
        // The +1 correction: never 0, at least 1 / (rounds + 1).
        assert!(p >= 1.0 / 5001.0);
    }

    #[test]
    fn permutation_test_accepts_one_distribution() {
        // Under the null hypothesis p is uniform, so any single pair can give a small p by
        // chance; this pair's draws were fixed once (the calibration test below is the
        // check that does not depend on the seeds).
        let a = normal(30, 100.0, 5.0, 23);
        let b = normal(30, 100.0, 5.0, 24);
        let p = permutation_test(&a, &b, 5000, 3);
        assert!(p > 0.2, "p = {p}");
        // Identical samples: every relabelling is at least as extreme.
        assert_eq!(permutation_test(&a, &a, 100, 3), 1.0);
        assert_eq!(permutation_test(&a, &[], 100, 3), 1.0);
    }

    #[test]
    fn permutation_test_is_calibrated() {
        // 200 A/A pairs: about 5% of the p-values are below 0.05 and the median is near 0.5.
        let mut ps: Vec<f64> = (0..200u64)
            .map(|s| {
                let a = normal(30, 100.0, 5.0, 1000 + 2 * s);
                let b = normal(30, 100.0, 5.0, 1001 + 2 * s);
                permutation_test(&a, &b, 1000, s)
            })
            .collect();
        let below = ps.iter().filter(|&&p| p < 0.05).count();
        assert!((2..=20).contains(&below), "{below} of 200 below 0.05");
        ps.sort_by(f64::total_cmp);
        let median = quantile_sorted(&ps, 0.5);
        assert!((0.35..0.65).contains(&median), "median p {median}");
        // And a real shift of one standard deviation is found nearly every time.
        let found = (0..50u64)
            .filter(|&s| {
                let a = normal(30, 100.0, 5.0, 3000 + 2 * s);
                let b = normal(30, 105.0, 5.0, 3001 + 2 * s);
                permutation_test(&a, &b, 1000, s) < 0.05
            })
            .count();
        assert!(found >= 45, "{found} of 50 shifts found");
    }

    #[test]
    fn smallest_p_value_is_the_tests_resolution() {
        assert!(close(smallest_p_value(3, 3, PERMUTATION_ROUNDS), 0.1));
        assert!(close(
            smallest_p_value(4, 4, PERMUTATION_ROUNDS),
            2.0 / 70.0
        ));
        assert!(close(
            smallest_p_value(5, 5, PERMUTATION_ROUNDS),
            2.0 / 252.0
        ));
        assert!(close(
            smallest_p_value(4, 5, PERMUTATION_ROUNDS),
            1.0 / 126.0
        ));
        assert!(close(smallest_p_value(1, 1, PERMUTATION_ROUNDS), 1.0));
        // Large samples: the number of rounds is the limit.
        assert!(close(smallest_p_value(20, 20, PERMUTATION_ROUNDS), 1e-4));
        assert!(close(smallest_p_value(20, 20, 99), 0.01));
        assert_eq!(smallest_p_value(0, 5, PERMUTATION_ROUNDS), 1.0);
        assert_eq!(smallest_p_value(5, 5, 0), 1.0);
        // The sampled test reaches it when the samples do not overlap at all.
        for (na, nb) in [(3, 3), (4, 4), (5, 5), (4, 6)] {
            let a: Vec<f64> = (0..na).map(|i| 100.0 + i as f64).collect();
            let b: Vec<f64> = (0..nb).map(|i| 200.0 + i as f64).collect();
            let p = permutation_test(&a, &b, PERMUTATION_ROUNDS, 5);
            let min = smallest_p_value(na, nb, PERMUTATION_ROUNDS);
            // Within four standard errors of the sampled estimate.
            let se = (min * (1.0 - min) / PERMUTATION_ROUNDS as f64).sqrt();
            assert!(
                (p - min).abs() < 4.0 * se + 1e-4,
                "{na} vs {nb}: p {p}, min {min}"
            );
        }
    }

    #[test]
    fn permutation_test_is_symmetric_and_deterministic() {
        let a = normal(20, 100.0, 5.0, 31);
        let b = normal(20, 103.0, 5.0, 32);
        let p = permutation_test(&a, &b, 2000, 9);
        assert_eq!(p, permutation_test(&a, &b, 2000, 9));
        let q = permutation_test(&b, &a, 2000, 9);
        assert!((p - q).abs() < 0.03, "{p} vs {q}");
    }

    #[test]
    fn a_twenty_percent_slowdown_is_a_regression() {
        let a = normal(20, 1000.0, 30.0, 41);
        let b = normal(20, 1200.0, 30.0, 42);
        let c = compare(&a, &b, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!((0.17..0.23).contains(&c.relative_change), "{c:?}");
        assert!(c.p_value < 0.001, "{c:?}");
        let (lo, hi) = c.effect_ci95;
        assert!(lo < c.relative_change && c.relative_change < hi, "{c:?}");
        assert!(lo > 0.1 && hi < 0.3, "{c:?}");
        // The other way round it is an improvement.
        let back = compare(&b, &a, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
        assert_eq!(back.verdict, Verdict::Improved, "{back:?}");
    }

    #[test]
    fn an_a_a_comparison_is_unchanged() {
        let a = normal(20, 1000.0, 30.0, 51);
        let b = normal(20, 1000.0, 30.0, 52);
        let c = compare(&a, &b, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
        assert_eq!(c.verdict, Verdict::Unchanged, "{c:?}");
        assert!(c.p_value > DEFAULT_ALPHA, "{c:?}");
        assert!(c.effect_ci95.0 < c.relative_change && c.relative_change < c.effect_ci95.1);
        // Not a lucky pair: 20 A/A comparisons, none flagged either way.
        for s in 0..20u64 {
            let a = normal(20, 1000.0, 30.0, 5000 + 2 * s);
            let b = normal(20, 1000.0, 30.0, 5001 + 2 * s);
            let c = compare(&a, &b, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
            assert_eq!(c.verdict, Verdict::Unchanged, "pair {s}: {c:?}");
        }
        let same = compare(&a, &a, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
        assert_eq!(
            (same.verdict, same.relative_change, same.p_value),
            (Verdict::Unchanged, 0.0, 1.0)
        );
    }

    #[test]
    fn a_significant_change_within_the_noise_threshold_is_unchanged() {
        let a = normal(30, 1000.0, 2.0, 61);
        let b = normal(30, 1020.0, 2.0, 62);
        let c = compare(&a, &b, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
        assert!(c.p_value < DEFAULT_ALPHA, "significant: {c:?}");
        assert!((0.015..0.025).contains(&c.relative_change), "{c:?}");
        assert_eq!(c.verdict, Verdict::Unchanged, "{c:?}");
        // A 1% threshold makes the same data a regression.
        let strict = compare(&a, &b, 0.01, DEFAULT_ALPHA, false);
        assert_eq!(strict.verdict, Verdict::Regressed, "{strict:?}");
    }

    #[test]
    fn a_large_but_noisy_change_is_unchanged() {
        let a = normal(4, 1000.0, 400.0, 71);
        let b = normal(4, 1100.0, 400.0, 72);
        let c = compare(&a, &b, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, false);
        assert!(c.relative_change.abs() > DEFAULT_NOISE_THRESHOLD, "{c:?}");
        assert_eq!(c.verdict, Verdict::Unchanged, "{c:?}");
    }

    #[test]
    fn higher_is_better_flips_the_direction() {
        let a = normal(20, 1000.0, 30.0, 81);
        let b = normal(20, 1200.0, 30.0, 82);
        // 20% more throughput is an improvement, 20% less a regression.
        let up = compare(&a, &b, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, true);
        assert_eq!(up.verdict, Verdict::Improved, "{up:?}");
        let down = compare(&b, &a, DEFAULT_NOISE_THRESHOLD, DEFAULT_ALPHA, true);
        assert_eq!(down.verdict, Verdict::Regressed, "{down:?}");
        assert!(down.relative_change < -0.1, "{down:?}");
    }

    #[test]
    fn verdicts_serialize_lowercase() {
        assert_eq!(
            serde_json::to_string(&Verdict::Regressed).unwrap(),
            "\"regressed\""
        );
    }
}
