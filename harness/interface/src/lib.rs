//! The VMM-build interface (`docs/vmm-interface.md`): how a harness drives any VMM build as a
//! separate process. The harness writes a [`RunConfig`] as JSON, runs
//! `<vmm> run --config run.json --out result.json`, and reads a [`RunResult`] back.
//! Both documents carry a `version`; an unknown version or an unknown field is an error.

pub mod config;
pub mod exit;
pub mod result;
pub mod usage;

pub use config::*;
pub use result::*;

/// Version of the config and result documents described here.
pub const INTERFACE_VERSION: u32 = 1;
