//! The seed and size of the property-based fuzzing tier (`docs/TESTING.md#fuzzing-tier`).
//!
//! Every target takes its seed from `PAGEFLIP_FUZZ_SEED` (a u64) or, without it, from the
//! clock, and prints it before it starts, with the command that replays it: a failure seen
//! once in CI can be run again. `PAGEFLIP_FUZZ_CASES` overrides a target's case count.

use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRng, TestRunner};

/// The seed of this run: `PAGEFLIP_FUZZ_SEED`, else one from the clock.
///
/// Panics on a `PAGEFLIP_FUZZ_SEED` that is not a u64, so a mistyped replay does not run
/// another seed silently.
pub fn seed() -> u64 {
    match std::env::var("PAGEFLIP_FUZZ_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("PAGEFLIP_FUZZ_SEED={s:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// Cases to run: `PAGEFLIP_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PAGEFLIP_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A proptest runner for target `name` (the test's path, as `cargo test` filters it): seeded,
/// with `default_cases` cases unless overridden, no regression files, and the seed printed.
pub fn runner(name: &str, default_cases: u32) -> TestRunner {
    let seed = seed();
    let cases = cases(default_cases);
    eprintln!(
        "fuzz {name}: seed {seed}, {cases} cases (replay: PAGEFLIP_FUZZ_SEED={seed} cargo test --release -p pageflip-vmm {name})"
    );
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
    )
}

/// The 32-byte ChaCha seed of a u64 seed.
fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, chunk) in b.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Strategy, ValueTree};

    #[test]
    fn one_seed_gives_one_sequence() {
        let draw = |seed| {
            let mut r = TestRunner::new_with_rng(
                Config::default(),
                TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
            );
            (0..8)
                .map(|_| (0u64..u64::MAX).new_tree(&mut r).unwrap().current())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
