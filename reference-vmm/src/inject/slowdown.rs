//! An injected slowdown: a *performance* fault of the reference VMM, set only on its command
//! line (`pageflip-vmm run --inject-slowdown-us N`), so that a benchmark comparison can be
//! shown to flag a slower VMM build.
//!
//! With a slowdown of N µs the VMM busy-waits N µs (spinning on [`Instant`], not sleeping:
//! a sleep would hand the CPU to the scheduler and change more than the VMM's own cost) on
//! every message it moves:
//!
//! - remap IPC (`remap`, `copy`): each descriptor delivered by a drain, inside the interval
//!   the engine times as the transport's `move_ns`;
//! - virtio: each tx buffer relayed into a receiver's rx buffer, inside the relay's
//!   `move_ns` interval;
//! - shared memory: nothing. The VMM does no work per message there (the guests write and
//!   read one shared ring), so this knob cannot slow it.
//!
//! It is not a correctness fault: it is not one of [`crate::inject::ALL_FAULTS`], `conform
//! --mutants` never uses it, and every conformance case still passes with it (only slower).

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The microseconds of busy-waiting per message a slowdown may have.
pub const SLOWDOWN_US: RangeInclusive<u32> = 1..=100_000;

/// A busy-wait of a fixed number of microseconds per message moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slowdown {
    us: u32,
}

/// Why a slowdown was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlowdownError {
    /// Not a whole number.
    #[error("{0:?} is not a whole number of microseconds")]
    NotANumber(String),
    /// A number outside [`SLOWDOWN_US`].
    #[error(
        "{0} us is out of range: give {min} to {max} microseconds of busy-waiting per message",
        min = SLOWDOWN_US.start(),
        max = SLOWDOWN_US.end()
    )]
    OutOfRange(u64),
}

impl Slowdown {
    /// A slowdown of `us` microseconds per message, within [`SLOWDOWN_US`].
    pub fn from_us(us: u32) -> Result<Slowdown, SlowdownError> {
        if SLOWDOWN_US.contains(&us) {
            Ok(Slowdown { us })
        } else {
            Err(SlowdownError::OutOfRange(us.into()))
        }
    }

    /// The microseconds of busy-waiting per message.
    pub fn us(self) -> u32 {
        self.us
    }

    /// Busy-waits for the slowdown's duration (at least that long, on the calling thread).
    pub fn spin(self) {
        let started = Instant::now();
        let wait = Duration::from_micros(self.us.into());
        while started.elapsed() < wait {
            std::hint::spin_loop();
        }
    }
}

impl fmt::Display for Slowdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} us per message", self.us)
    }
}

impl FromStr for Slowdown {
    type Err = SlowdownError;
    fn from_str(s: &str) -> Result<Slowdown, SlowdownError> {
        let us: u64 = s
            .trim()
            .parse()
            .map_err(|_| SlowdownError::NotANumber(s.to_string()))?;
        u32::try_from(us)
            .map_err(|_| SlowdownError::OutOfRange(us))
            .and_then(Slowdown::from_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_range_and_refuses_the_rest() {
        assert_eq!("1".parse::<Slowdown>().map(Slowdown::us), Ok(1));
        assert_eq!("100000".parse::<Slowdown>().map(Slowdown::us), Ok(100_000));
        for bad in ["0", "100001", "5000000000"] {
            let e = bad.parse::<Slowdown>().unwrap_err();
            assert!(matches!(e, SlowdownError::OutOfRange(_)), "{bad}: {e}");
            assert!(e.to_string().contains("1 to 100000"), "{e}");
        }
        for bad in ["", "-3", "2.5", "lots"] {
            let e = bad.parse::<Slowdown>().unwrap_err();
            assert_eq!(e, SlowdownError::NotANumber(bad.into()));
        }
    }

    #[test]
    fn spins_at_least_its_duration() {
        let s = Slowdown::from_us(2_000).unwrap();
        let started = Instant::now();
        s.spin();
        assert!(started.elapsed() >= Duration::from_micros(2_000));
    }
}
