//! What a run planned and what the VMM build did: the rig's output, which conform judges and
//! bench measures.

use std::path::PathBuf;

use pageflip_interface::{RunConfig, RunResult};

use crate::run::vmm::VmmRun;

/// What the rig planned for a run: the config it handed to the VMM (if the text is a
/// valid one) and the guest image path of each VM.
#[derive(Clone, Debug, Default)]
pub struct Planned {
    /// The config, if the text handed to the VMM is a valid config.
    pub config: Option<RunConfig>,
    /// Guest image path of each VM.
    pub image_paths: Vec<PathBuf>,
}

/// What the VMM did.
#[derive(Clone, Debug)]
pub struct Observed {
    /// How its process ended.
    pub run: VmmRun,
    /// Its standard error.
    pub stderr: String,
    /// The result file it wrote.
    pub result: ResultFile,
}

/// The result file after a VMM process ended.
#[derive(Clone, Debug)]
pub enum ResultFile {
    /// There is none.
    Absent,
    /// It is not a valid result (why).
    Invalid(String),
    /// A valid result.
    Parsed(Box<RunResult>),
}
