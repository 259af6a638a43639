//! What the VMM's command line injects into a run, and nothing else can: one correctness fault
//! in a transport ([`faults`], `--inject-fault`, for `conform --mutants`) or a performance fault
//! ([`slowdown`], `--inject-slowdown-us`). No guest and no run config reaches this module;
//! normal runs have neither.

pub mod faults;
pub mod slowdown;

pub use faults::{Fault, ALL_FAULTS};
pub use slowdown::{Slowdown, SLOWDOWN_US};

/// What the VMM's command line injects into a run (no config and no guest can): normal runs
/// have nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// One correctness fault in a transport (`--inject-fault`, mutation testing only).
    pub fault: Option<Fault>,
    /// A busy-wait on every message the VMM moves (`--inject-slowdown-us`, a performance
    /// fault: see [`slowdown`]).
    pub slowdown: Option<Slowdown>,
}
