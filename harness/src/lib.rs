//! pageflip's harness: the conformance suite `conform` and the benchmark runner `bench`, over
//! one shared [`run`] layer that runs any VMM build (`docs/vmm-interface.md`) as a separate
//! process. `report`, which reads what `bench` writes, is its own crate (`pageflip-report`),
//! and the results schema and statistics are shared with it (`pageflip-results`).
//!
//! - [`run`]: the VMM process, the guest images, run layouts, and the rig that executes an input
//!   and returns what was planned and observed.
//! - [`conform`]: the suite — cases as data, one file per area, their expectations, mutants,
//!   output formats and command line.
//! - [`mod@bench`]: the matrix, the runner, the floor, measurement, perf tracepoints and the
//!   command line.

pub mod bench;
pub mod conform;
pub mod run;
