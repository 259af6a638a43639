//! The VMM under test, run as a separate process through the VMM-build interface:
//! `<vmm> run --config C --out R` (`docs/vmm-interface.md`).

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Hidden first argument with which `conform` runs the reference VMM linked into it.
pub const VMM_SUBCOMMAND: &str = "__vmm";

/// How often a running VMM process is polled for its exit.
const POLL: Duration = Duration::from_millis(2);

/// A VMM build: a program (and leading arguments) that speaks the interface.
#[derive(Clone, Debug)]
pub struct Vmm {
    program: PathBuf,
    leading_args: Vec<OsString>,
    run_args: Vec<String>,
    description: String,
}

/// How a VMM process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmmExit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal (not by the harness).
    Signal(i32),
    /// It ran longer than the harness's per-case timeout and was killed.
    TimedOut(Duration),
}

impl fmt::Display for VmmExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmmExit::Code(c) => write!(f, "exit code {c}"),
            VmmExit::Signal(s) => write!(f, "killed by signal {s}"),
            VmmExit::TimedOut(t) => write!(
                f,
                "still running after the per-case timeout of {} s; killed",
                t.as_secs_f64()
            ),
        }
    }
}

/// One finished VMM process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmmRun {
    /// How it ended.
    pub exit: VmmExit,
    /// Time from spawning it to seeing it exit.
    pub elapsed: Duration,
}

/// Why a VMM could not be used or run.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// `--vmm` names no file.
    #[error("--vmm {0}: no such file; give the path of a VMM build (one that runs `PATH run --config C --out R`)")]
    NotFound(PathBuf),
    /// `--vmm` names a directory or other non-file.
    #[error("--vmm {0}: not a regular file; give the path of a VMM build's executable")]
    NotAFile(PathBuf),
    /// `--vmm` names a file without execute permission.
    #[error(
        "--vmm {0}: not executable; `chmod +x` it or give the path of a VMM build's executable"
    )]
    NotExecutable(PathBuf),
    /// The path of the running conform binary is unknown.
    #[error(
        "cannot find the conform executable to run the built-in reference VMM; pass --vmm PATH"
    )]
    CurrentExe(#[source] io::Error),
    /// The process could not be started.
    #[error("cannot start the VMM {0}")]
    Spawn(String, #[source] io::Error),
    /// Waiting for or killing the process failed.
    #[error("lost track of the VMM process {0}")]
    Wait(String, #[source] io::Error),
}

impl Vmm {
    /// The reference VMM linked into this `conform` binary, run by re-executing it with
    /// [`VMM_SUBCOMMAND`], so it goes through the same process interface as any `--vmm`.
    pub fn builtin() -> Result<Vmm, VmmError> {
        let program = std::env::current_exe().map_err(VmmError::CurrentExe)?;
        Ok(Vmm {
            description: "the built-in reference VMM (conform __vmm)".to_string(),
            program,
            leading_args: vec![VMM_SUBCOMMAND.into()],
            run_args: Vec::new(),
        })
    }

    /// The VMM build at `path`; a name without `/` is looked up in `PATH` as a shell would.
    pub fn at(path: &Path) -> Result<Vmm, VmmError> {
        let found = if path.components().count() == 1 && !path.exists() {
            search_path(path).unwrap_or_else(|| path.to_path_buf())
        } else {
            path.to_path_buf()
        };
        let meta = match found.metadata() {
            Ok(meta) => meta,
            Err(_) => return Err(VmmError::NotFound(path.to_path_buf())),
        };
        if !meta.is_file() {
            return Err(VmmError::NotAFile(path.to_path_buf()));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(VmmError::NotExecutable(path.to_path_buf()));
        }
        // Absolute, so that a bare name found in the current directory is not looked up in
        // PATH when it is run.
        let program = std::path::absolute(&found).unwrap_or(found);
        Ok(Vmm {
            description: program.display().to_string(),
            program,
            leading_args: Vec::new(),
            run_args: Vec::new(),
        })
    }

    /// The same VMM run with `args` after the interface's own (`run --config C --out R
    /// ARGS...`), following any it already has; `what` says what they do, for messages
    /// (appended to the description after a space, e.g. `slowed down by 200 us per message`).
    pub fn with_run_args(&self, args: Vec<String>, what: &str) -> Vmm {
        let mut v = self.clone();
        v.run_args.extend(args);
        v.description = format!("{} {what}", self.description);
        v
    }

    /// The same VMM with one fault injected (`run ... --inject-fault NAME`), as the
    /// reference VMM offers for mutation testing.
    pub fn with_fault(&self, fault: &str) -> Vmm {
        self.with_run_args(
            vec!["--inject-fault".into(), fault.into()],
            &format!("with fault {fault}"),
        )
    }

    /// The extra arguments every run gets after `run --config C --out R` (none for a plain
    /// build), so that a benchmark can record how the VMM was run.
    pub fn run_args(&self) -> &[String] {
        &self.run_args
    }

    /// What this VMM is, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The executable that is run (for the built-in VMM: this program).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs `run --config <config> --out <out>`, with stdout and stderr going to the given
    /// files, and kills the process if it is still running after `timeout`.
    pub fn run(
        &self,
        config: &Path,
        out: &Path,
        stdout: File,
        stderr: File,
        timeout: Duration,
    ) -> Result<VmmRun, VmmError> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.leading_args)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--out")
            .arg(out)
            .args(&self.run_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let start = Instant::now();
        let mut child =
            spawn(&mut command).map_err(|e| VmmError::Spawn(self.description.clone(), e))?;
        let lost = |e| VmmError::Wait(self.description.clone(), e);
        loop {
            if let Some(status) = child.try_wait().map_err(lost)? {
                let exit = match (status.code(), status.signal()) {
                    (Some(code), _) => VmmExit::Code(code),
                    (None, Some(signal)) => VmmExit::Signal(signal),
                    (None, None) => VmmExit::Signal(0),
                };
                return Ok(VmmRun {
                    exit,
                    elapsed: start.elapsed(),
                });
            }
            if start.elapsed() >= timeout {
                // The whole tree: behind a wrapper script the real VMM is a grandchild.
                super::tree::kill_descendants(child.id());
                child.kill().map_err(lost)?;
                child.wait().map_err(lost)?;
                return Ok(VmmRun {
                    exit: VmmExit::TimedOut(timeout),
                    elapsed: start.elapsed(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Spawns `command`, retrying briefly on `ETXTBSY`: a VMM script written just before (as
/// tests do) can be held open for writing by a process another thread is forking.
fn spawn(command: &mut Command) -> io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn search_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("vmm.sh");
        let mut f = File::create(&path).unwrap();
        writeln!(f, "#!/bin/sh\n{body}").unwrap();
        drop(f);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn run(vmm: &Vmm, dir: &Path, timeout: Duration) -> (VmmRun, String) {
        let err = dir.join("stderr");
        let r = vmm
            .run(
                &dir.join("c.json"),
                &dir.join("r.json"),
                File::create(dir.join("stdout")).unwrap(),
                File::create(&err).unwrap(),
                timeout,
            )
            .unwrap();
        (r, std::fs::read_to_string(err).unwrap())
    }

    #[test]
    fn passes_the_interface_arguments_and_reports_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let vmm = Vmm::at(&script(dir.path(), "echo \"$@\" >&2; exit 3")).unwrap();
        let (r, err) = run(&vmm, dir.path(), Duration::from_secs(10));
        assert_eq!(r.exit, VmmExit::Code(3));
        assert_eq!(err.trim(), interface_args(dir.path()));
    }

    /// The arguments [`run`] passes: `run --config C --out R` in `dir`.
    fn interface_args(dir: &Path) -> String {
        let c = dir.join("c.json");
        let o = dir.join("r.json");
        format!("run --config {} --out {}", c.display(), o.display())
    }

    #[test]
    fn run_args_follow_the_interface_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Vmm::at(&script(dir.path(), "echo \"$@\" >&2; exit 0")).unwrap();
        assert!(plain.run_args().is_empty());
        let vmm = plain.with_fault("skip-unmap").with_run_args(
            vec!["--inject-slowdown-us".into(), "200".into()],
            "with a slowdown",
        );
        assert_eq!(
            vmm.run_args(),
            [
                "--inject-fault",
                "skip-unmap",
                "--inject-slowdown-us",
                "200"
            ]
        );
        assert_eq!(
            vmm.description(),
            format!(
                "{} with fault skip-unmap with a slowdown",
                plain.description()
            )
        );
        let (r, err) = run(&vmm, dir.path(), Duration::from_secs(10));
        assert_eq!(r.exit, VmmExit::Code(0));
        assert_eq!(
            err.trim(),
            format!(
                "{} --inject-fault skip-unmap --inject-slowdown-us 200",
                interface_args(dir.path())
            )
        );
    }

    #[test]
    fn kills_a_vmm_that_overstays() {
        let dir = tempfile::tempdir().unwrap();
        let vmm = Vmm::at(&script(dir.path(), "exec sleep 30")).unwrap();
        let (r, _) = run(&vmm, dir.path(), Duration::from_millis(200));
        assert_eq!(r.exit, VmmExit::TimedOut(Duration::from_millis(200)));
        assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    }

    #[test]
    fn a_timeout_kills_what_a_wrapper_script_started() {
        // A wrapper that runs the "real VMM" as a child (and it a grandchild), as a
        // `--vmm` script does; each writes its pid, so the test can look for it afterwards.
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let body = format!(
            "sh -c 'echo $$ >> {p}; sleep 600 & echo $! >> {p}; wait' &\necho $! >> {p}\nwait",
            p = pids.display()
        );
        let vmm = Vmm::at(&script(dir.path(), &body)).unwrap();
        let (r, _) = run(&vmm, dir.path(), Duration::from_millis(500));
        assert_eq!(r.exit, VmmExit::TimedOut(Duration::from_millis(500)));
        let listed: Vec<u32> = std::fs::read_to_string(&pids)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(listed.len() >= 2, "the wrapper's children wrote {listed:?}");
        std::thread::sleep(Duration::from_millis(100));
        for pid in listed {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
            assert!(
                matches!(state, None | Some('Z')),
                "process {pid} is left behind after the timeout: {stat}"
            );
        }
    }

    #[test]
    fn refuses_paths_that_are_no_vmm() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Vmm::at(Path::new("/nonexistent/vmm")),
            Err(VmmError::NotFound(_))
        ));
        assert!(matches!(
            Vmm::at(Path::new("no-such-vmm-in-path")),
            Err(VmmError::NotFound(_))
        ));
        assert!(matches!(Vmm::at(dir.path()), Err(VmmError::NotAFile(_))));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        assert!(matches!(Vmm::at(&plain), Err(VmmError::NotExecutable(_))));
        assert!(Vmm::at(Path::new("sh")).is_ok(), "found in PATH");
    }
}
