//! The rig: runs one input as a VMM process — writes its config, runs the VMM build, reads
//! what it did — and returns what was planned and observed. Conform judges that; bench
//! measures it. It knows no conformance type.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pageflip_interface::{exit, RunConfig, RunResult};

use crate::run::images::{Image, ImageSet};
use crate::run::layout::{Input, Layout, HELLO_PLACEHOLDER};
use crate::run::observed::{Observed, Planned, ResultFile};
use crate::run::vmm::{Vmm, VmmError, VmmExit};

/// File names of what a run leaves in its directory.
pub mod files {
    /// The config handed to the VMM.
    pub const CONFIG: &str = "run.json";
    /// The result the VMM writes.
    pub const RESULT: &str = "result.json";
    /// The VMM's standard output.
    pub const STDOUT: &str = "stdout.txt";
    /// The VMM's standard error.
    pub const STDERR: &str = "stderr.txt";
}

/// What the rig runs inputs with.
#[derive(Debug)]
pub struct Rig<'a> {
    /// The VMM under test.
    pub vmm: &'a Vmm,
    /// The guest images.
    pub images: &'a ImageSet,
    /// Each run gets a directory under `<work_dir>`.
    pub work_dir: &'a Path,
    /// Per-run limit on the VMM process.
    pub timeout: Duration,
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// A run's directory or config could not be written.
    #[error("cannot write {0}")]
    Write(PathBuf, #[source] io::Error),
    /// A run's config could not be serialized (e.g. a path that is not UTF-8).
    #[error("cannot write the config of {0} as JSON")]
    Serialize(String, #[source] serde_json::Error),
    /// The VMM could not be run.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The VMM reports a host problem: nothing can run here.
    #[error("cannot run on this host: in {run} the VMM exited with code {code} (host problem): {message}")]
    HostProblem {
        /// The run (a case's name, or a benchmark run's).
        run: String,
        /// The VMM's exit code.
        code: i32,
        /// The VMM's last stderr line.
        message: String,
    },
}

impl Rig<'_> {
    /// Runs `input` as the run `name` in `<work_dir>/<dir>` (`dir` may hold `/`) and collects
    /// what the VMM did (a VMM reporting a host problem is an error: nothing can run here).
    pub fn execute(
        &self,
        name: &str,
        input: &Input,
        dir: &str,
    ) -> Result<(Planned, Observed), RigError> {
        execute(self, name, input, dir)
    }
}

/// Why a run that must succeed did not ([`Rig::run_clean`]).
#[derive(Debug, thiserror::Error)]
pub enum CleanRunError {
    /// The VMM could not be run.
    #[error(transparent)]
    Rig(#[from] RigError),
    /// The run did not produce a usable result, or a VM did not succeed.
    #[error("run {run}: {why}")]
    Run {
        /// The run.
        run: String,
        /// What was wrong.
        why: String,
    },
}

impl Rig<'_> {
    /// Runs `layout` as the run `name` (its files in `dir` under the work directory) and
    /// returns its config and result, checking that every VM succeeded with no failed record:
    /// a benchmark run that must measure something.
    pub fn run_clean(
        &self,
        name: &str,
        dir: &str,
        layout: Layout,
    ) -> Result<(RunConfig, RunResult), CleanRunError> {
        let (planned, seen) = self.execute(name, &Input::Run(layout), dir)?;
        let err = |why: String| CleanRunError::Run {
            run: name.into(),
            why,
        };
        let result = match seen.result {
            ResultFile::Parsed(r) => *r,
            ResultFile::Absent => {
                return Err(err(format!(
                    "no result ({}): {}",
                    seen.run.exit,
                    seen.stderr.trim()
                )))
            }
            ResultFile::Invalid(why) => return Err(err(why)),
        };
        for vm in &result.vms {
            if !vm.status.is_success() || vm.summary.fail > 0 {
                return Err(err(format!(
                    "{} ended {:?} with {} failed records",
                    vm.name, vm.status, vm.summary.fail
                )));
            }
        }
        Ok((planned.config.expect("runs have configs"), result))
    }
}

fn execute(
    rig: &Rig<'_>,
    name: &str,
    input: &Input,
    dir: &str,
) -> Result<(Planned, Observed), RigError> {
    let dir = rig.work_dir.join(dir);
    fresh_dir(&dir)?;
    let (text, planned) = plan(name, input, rig.images)?;
    let config_path = dir.join(files::CONFIG);
    let result_path = dir.join(files::RESULT);
    let stderr_path = dir.join(files::STDERR);
    fs::write(&config_path, text).map_err(|e| RigError::Write(config_path.clone(), e))?;
    let create = |path: PathBuf| File::create(&path).map_err(|e| RigError::Write(path, e));
    let run = rig.vmm.run(
        &config_path,
        &result_path,
        create(dir.join(files::STDOUT))?,
        create(stderr_path.clone())?,
        rig.timeout,
    )?;
    let stderr = fs::read(&stderr_path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    if run.exit == VmmExit::Code(exit::HOST) {
        return Err(RigError::HostProblem {
            run: name.to_string(),
            code: exit::HOST,
            message: stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(no message on stderr)")
                .to_string(),
        });
    }
    let result = read_result(&result_path);
    Ok((
        planned,
        Observed {
            run,
            stderr,
            result,
        },
    ))
}

/// The config text of the run `name` that hands `input` to the VMM, and what the rig planned.
pub fn plan(name: &str, input: &Input, images: &ImageSet) -> Result<(String, Planned), RigError> {
    match input {
        Input::Run(layout) => {
            let config = layout.config(images);
            let text = serde_json::to_string_pretty(&config)
                .map_err(|e| RigError::Serialize(name.to_string(), e))?;
            let planned = Planned {
                image_paths: config.vms.iter().map(|vm| vm.image.clone()).collect(),
                config: Some(config),
            };
            Ok((text, planned))
        }
        Input::Raw(raw) => {
            let hello = images.path(Image::Guest(pageflip_workloads::HELLO));
            let quoted = serde_json::to_string(&hello)
                .map_err(|e| RigError::Serialize(name.to_string(), e))?;
            let text = raw.replace(HELLO_PLACEHOLDER, &quoted);
            let planned = Planned {
                config: RunConfig::from_json(&text).ok(),
                image_paths: if raw.contains(HELLO_PLACEHOLDER) {
                    vec![hello]
                } else {
                    Vec::new()
                },
            };
            Ok((text, planned))
        }
    }
}

fn fresh_dir(dir: &Path) -> Result<(), RigError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(RigError::Write(dir.to_path_buf(), e)),
    }
    fs::create_dir_all(dir).map_err(|e| RigError::Write(dir.to_path_buf(), e))
}

fn read_result(path: &Path) -> ResultFile {
    match fs::read_to_string(path) {
        Ok(text) => match RunResult::from_json(&text) {
            Ok(result) => ResultFile::Parsed(Box::new(result)),
            Err(e) => ResultFile::Invalid(e.to_string()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => ResultFile::Absent,
        Err(e) => ResultFile::Invalid(format!("cannot read {}: {e}", path.display())),
    }
}
