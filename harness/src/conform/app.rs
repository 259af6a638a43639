//! One `conform` invocation: select the cases, prepare the VMM, the images and the output,
//! run the suite.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::conform::bad_elf;
use crate::conform::cases::{self, Case};
use crate::conform::cli::{self, Options};
use crate::conform::formats::{CaseCounts, Reporter};
use crate::conform::mutants;
use crate::conform::suite::{self, SuiteError};
use crate::run::hugepages::Reservation;
use crate::run::images::{ImageError, ImageSet};
use crate::run::rig::Rig;
use crate::run::vmm::VMM_SUBCOMMAND;
use crate::run::vmm::{Vmm, VmmError};

/// Subdirectory of the work directory that holds the guest images.
pub const IMAGES_DIR: &str = "images";

/// How an invocation ended (errors aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// The cases were listed.
    Listed,
    /// The suite ran with these verdicts.
    Ran(CaseCounts),
    /// Mutation testing ran: whether every mutant was killed (and the baseline passed).
    Mutants(bool),
}

impl Finished {
    /// The process exit code: 0 unless a case failed, then 1.
    pub fn exit_code(self) -> u8 {
        match self {
            Finished::Ran(counts) if counts.failed > 0 => 1,
            Finished::Mutants(false) => 1,
            _ => 0,
        }
    }
}

/// Why an invocation could not run the suite.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `--filter` selects nothing.
    #[error("no case name contains {0}; run `conform --list` to see the cases")]
    NoMatch(String),
    /// `--output` cannot be created.
    #[error("--output {0}: cannot create the file (give a path in a writable directory)")]
    Output(PathBuf, #[source] io::Error),
    /// The `--keep` directory cannot be created.
    #[error("--keep {0}: cannot create the directory (give a writable directory)")]
    Keep(PathBuf, #[source] io::Error),
    /// The `--keep` path is not UTF-8 (configs name image paths in JSON).
    #[error("--keep {0}: the path is not valid UTF-8; give a UTF-8 path")]
    KeepNotUtf8(PathBuf),
    /// No temporary directory.
    #[error("cannot create a temporary directory (set TMPDIR to a writable directory)")]
    TempDir(#[source] io::Error),
    /// The images directory cannot be created.
    #[error("cannot create {0}")]
    ImagesDir(PathBuf, #[source] io::Error),
    /// The guest images cannot be written.
    #[error(transparent)]
    Images(#[from] ImageError),
    /// The bad guest images cannot be written.
    #[error(transparent)]
    BadImages(#[from] bad_elf::BadImagesError),
    /// The VMM cannot be used.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The suite cannot run.
    #[error(transparent)]
    Suite(#[from] SuiteError),
    /// Huge pages for the remap-huge cases could not be reserved (under CI).
    #[error(transparent)]
    HugePages(#[from] crate::run::hugepages::ReserveError),
    /// Writing the list failed.
    #[error("cannot write the case list")]
    List(#[source] io::Error),
}

/// Runs one invocation with these options.
pub fn run(options: &Options) -> Result<Finished, AppError> {
    cases::fuzz::set_seed(options.fuzz_seed);
    let mut selected = select(cases::all(), &options.filter, &options.skip)?;
    let mut out = open_output(options.output.as_deref())?;
    if options.list {
        out.write_all(list(&selected).as_bytes())
            .and_then(|()| out.flush())
            .map_err(AppError::List)?;
        return Ok(Finished::Listed);
    }
    let vmm = match &options.vmm {
        Some(path) => Vmm::at(path)?,
        None => Vmm::builtin()?,
    };
    // The temporary directory (if any) lives until the suite is done.
    let (_temp, work_dir) = work_dir(options.keep.as_deref())?;
    let images_dir = work_dir.join(IMAGES_DIR);
    fs::create_dir_all(&images_dir).map_err(|e| AppError::ImagesDir(images_dir.clone(), e))?;
    let images = ImageSet::write(&images_dir)?;
    bad_elf::write_all(&images)?;
    // remap-huge cases need free huge pages; reserve them (root) for the suite's duration.
    // Where that fails the cases are skipped with what to run, except under CI, where a
    // skipped case would hide a broken lane.
    let huge = selected
        .iter()
        .map(|c| c.input.huge_pages())
        .max()
        .unwrap_or(0);
    let _huge = match huge {
        0 => None,
        n => match Reservation::at_least(n) {
            Ok(r) => Some(r),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                return Err(AppError::HugePages(e))
            }
            Err(e) => {
                for c in selected.iter_mut().filter(|c| c.input.huge_pages() > 0) {
                    c.skip = Some(e.to_string().into());
                }
                None
            }
        },
    };
    let rig = Rig {
        vmm: &vmm,
        images: &images,
        work_dir: &work_dir,
        timeout: options.timeout,
    };
    if options.mutants {
        let transport: Vec<Case> = selected
            .into_iter()
            .filter(|c| c.transport().is_some())
            .collect();
        if transport.is_empty() {
            return Err(AppError::NoMatch(
                "a case with a transport (for --mutants)".into(),
            ));
        }
        let names = mutants::fault_names();
        let matrix = mutants::run(
            &transport,
            &rig,
            &names,
            &mutants::reference_fault_applies,
            &mut io::stderr(),
        )?;
        mutants::write(&matrix, &mut out).map_err(AppError::List)?;
        return Ok(Finished::Mutants(matrix.all_killed()));
    }
    let mut reporter = Reporter::new(options.format, out, Box::new(io::stderr()));
    let suite = suite::run_suite(&selected, &rig, &mut reporter)?;
    Ok(Finished::Ran(suite.counts()))
}

/// The cases whose name contains any of `filters` (all cases if there are none) and none of
/// `skips`.
pub fn select(
    cases: Vec<Case>,
    filters: &[String],
    skips: &[String],
) -> Result<Vec<Case>, AppError> {
    let selected: Vec<Case> = cases
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .filter(|c| !skips.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        let quoted: Vec<String> = filters.iter().map(|f| format!("{f:?}")).collect();
        let skipped: Vec<String> = skips.iter().map(|f| format!("{f:?}")).collect();
        let mut what = if quoted.is_empty() {
            "any case".to_string()
        } else {
            quoted.join(" or ")
        };
        if !skipped.is_empty() {
            what = format!("{what} but not {}", skipped.join(" or "));
        }
        return Err(AppError::NoMatch(what));
    }
    Ok(selected)
}

/// The `--list` text: one line per case, name and description.
pub fn list(cases: &[Case]) -> String {
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    cases
        .iter()
        .map(|c| {
            let skip = c
                .skip
                .as_ref()
                .map(|why| format!(" [skipped: {why}]"))
                .unwrap_or_default();
            format!("{:width$}  {}{skip}\n", c.name, c.description)
        })
        .collect()
}

fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>, AppError> {
    match path {
        None => Ok(Box::new(io::stdout())),
        Some(path) => {
            let file = File::create(path).map_err(|e| AppError::Output(path.to_path_buf(), e))?;
            Ok(Box::new(BufWriter::new(file)))
        }
    }
}

fn work_dir(keep: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf), AppError> {
    match keep {
        Some(dir) => {
            if dir.to_str().is_none() {
                return Err(AppError::KeepNotUtf8(dir.to_path_buf()));
            }
            fs::create_dir_all(dir).map_err(|e| AppError::Keep(dir.to_path_buf(), e))?;
            let dir = dir
                .canonicalize()
                .map_err(|e| AppError::Keep(dir.to_path_buf(), e))?;
            Ok((None, dir))
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("conform-")
                .tempdir()
                .map_err(AppError::TempDir)?;
            let path = temp.path().to_path_buf();
            Ok((Some(temp), path))
        }
    }
}

/// Exit code for usage errors and suites that cannot run.
const EXIT_USAGE: u8 = 2;

/// Runs `conform` with the process's arguments; with the hidden first argument `__vmm` it is
/// the reference VMM instead (the default VMM under test: this same binary, run as a separate
/// process, so it goes through the same interface as any `--vmm` build).
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == VMM_SUBCOMMAND) {
        let vmm_args =
            std::iter::once(OsString::from("pageflip-vmm")).chain(args[2..].iter().cloned());
        return pageflip_vmm::cli::run_cli(vmm_args);
    }
    env_logger::init();
    match conform(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("conform: error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn conform(args: Vec<OsString>) -> anyhow::Result<u8> {
    let options = match cli::parse(args)? {
        cli::Parsed::Run(options) => options,
        cli::Parsed::Print(text) => {
            let mut stdout = std::io::stdout();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            return Ok(0);
        }
    };
    Ok(run(&options)?.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_by_substring_and_refuse_no_match() {
        let names = |cases: Vec<Case>| cases.iter().map(|c| c.name).collect::<Vec<_>>();
        let all = cases::all();
        assert_eq!(select(all.clone(), &[], &[]).unwrap().len(), all.len());
        let boot = names(select(all.clone(), &["boot-".into()], &[]).unwrap());
        assert_eq!(boot, ["boot-hello", "boot-info"]);
        let k = names(select(all.clone(), &["k10".into()], &["k100".into()]).unwrap());
        assert_eq!(k, ["exit-fidelity-k10"]);
        let two = names(select(all.clone(), &["k10".into(), "watchdog".into()], &[]).unwrap());
        assert_eq!(
            two,
            [
                "watchdog",
                "exit-fidelity-k10",
                "exit-fidelity-k100",
                "exit-fidelity-k1000"
            ]
        );
        let err = select(all.clone(), &["nothing-like-it".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("\"nothing-like-it\""), "{err}");
        let err = select(all, &["boot-".into()], &["boot".into()]).unwrap_err();
        assert!(err.to_string().contains("but not \"boot\""), "{err}");
    }

    #[test]
    fn list_has_one_aligned_line_per_case() {
        let all = cases::all();
        let text = list(&all);
        assert_eq!(text.lines().count(), all.len());
        let column = text.lines().next().unwrap().find("  one VM").unwrap();
        for (line, case) in text.lines().zip(&all) {
            assert!(line.starts_with(case.name));
            assert!(line[column + 2..].starts_with(case.description), "{line}");
        }
    }
}
