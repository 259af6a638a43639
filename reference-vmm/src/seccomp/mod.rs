//! Seccomp filters for the reference VMM's threads (`ARCHITECTURE.md`, "Seccomp").
//!
//! Every thread of a run is of one [`ThreadKind`] and runs under that kind's filter: an
//! allow-list of system calls by number ([`lists`]), built with `seccompiler` (Firecracker's
//! crate), whose mismatch action is `SECCOMP_RET_TRAP`. A disallowed call raises SIGSYS, and
//! [`report`]'s handler prints one line naming the thread kind and the system call, then
//! ends the process with exit code 1 (`INTERNAL`): never a silent kill. Arguments are not
//! filtered (`ioctl` is allowed whatever its request); the filters bound which system calls a
//! compromised or buggy thread can make, not how.
//!
//! The command line confines every run (`--no-seccomp` turns the filters off, for
//! debugging); [`crate::runner::run`], the library entry point, does not, so that tests and
//! tools that run the VMM inside their own process are not confined by it.

pub mod lists;
pub mod names;
pub mod report;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

pub use lists::Syscall;

/// The kinds of threads of a run, each with its own allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ThreadKind {
    /// The process's main thread: setup, then the watchdog, the joins and the result.
    Main,
    /// A vCPU thread: the `KVM_RUN` loop, the pageflip device and the transports' work on
    /// exits (remap IPC's drains, virtio with userspace notifications).
    Vcpu,
    /// The virtio ioeventfd backend thread (`virtio/backend.rs`): epoll on the eventfds, the
    /// relay.
    Backend,
}

impl ThreadKind {
    /// Every kind, in order.
    pub const ALL: [ThreadKind; 3] = [ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Backend];

    /// The kind's name, as in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Backend => "backend",
        }
    }

    /// The system calls this kind's filter allows.
    pub fn allowed(self) -> &'static [Syscall] {
        match self {
            ThreadKind::Main => lists::MAIN,
            ThreadKind::Vcpu => lists::VCPU,
            ThreadKind::Backend => lists::BACKEND,
        }
    }

    fn code(self) -> u8 {
        match self {
            ThreadKind::Main => 1,
            ThreadKind::Vcpu => 2,
            ThreadKind::Backend => 3,
        }
    }

    fn from_code(code: u8) -> Option<ThreadKind> {
        ThreadKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for ThreadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a thread kind.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a thread kind (main, vcpu, backend)")]
pub struct UnknownKind(String);

impl FromStr for ThreadKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<ThreadKind, UnknownKind> {
        ThreadKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.into()))
    }
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter of the {kind} threads failed: {source}")]
pub struct CompileError {
    /// The kind whose filter failed.
    pub kind: ThreadKind,
    /// seccompiler's error.
    pub source: seccompiler::BackendError,
}

/// The BPF program of `kind`'s filter: its allow-list, every other call trapped (SIGSYS).
pub fn compile(kind: ThreadKind) -> Result<BpfProgram, CompileError> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = kind
        .allowed()
        .iter()
        .map(|s| (s.number, Vec::new()))
        .collect();
    let err = |source| CompileError { kind, source };
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

/// Why a thread could not enter its filter (or the SIGSYS handler not be installed).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// `sigaction(SIGSYS)` failed.
    #[error("installing the SIGSYS handler failed: {0}")]
    Handler(#[source] std::io::Error),
    /// `prctl(PR_SET_NO_NEW_PRIVS)` or `seccomp(SET_MODE_FILTER)` failed.
    #[error("installing the seccomp filter of a {kind} thread failed: {source}")]
    Apply {
        /// The thread's kind.
        kind: ThreadKind,
        /// seccompiler's error.
        source: seccompiler::Error,
    },
}

/// The compiled filters of every kind.
#[derive(Debug)]
struct Filters {
    main: BpfProgram,
    vcpu: BpfProgram,
    backend: BpfProgram,
}

/// How a run's threads are confined: filters on or off, and the hidden self-test.
///
/// Cheap to clone (the filters are shared). [`Confinement::off`] (the default) installs nothing.
#[derive(Clone, Debug, Default)]
pub struct Confinement {
    filters: Option<Arc<Filters>>,
    selftest: Option<ThreadKind>,
}

impl Confinement {
    /// No filters (`--no-seccomp`, and the library's default).
    pub fn off() -> Confinement {
        Confinement::default()
    }

    /// Every kind's filter, compiled, and the process's SIGSYS handler installed.
    pub fn on() -> Result<Confinement, ConfinementError> {
        let filters = Filters {
            main: compile(ThreadKind::Main)?,
            vcpu: compile(ThreadKind::Vcpu)?,
            backend: compile(ThreadKind::Backend)?,
        };
        report::install_handler().map_err(InstallError::Handler)?;
        Ok(Confinement {
            filters: Some(Arc::new(filters)),
            selftest: None,
        })
    }

    /// The same, and threads of `kind` make one system call no filter allows (`getppid`) as
    /// soon as they have entered their filter: the test of the report (`--seccomp-selftest`).
    pub fn with_selftest(mut self, kind: Option<ThreadKind>) -> Confinement {
        self.selftest = kind;
        self
    }

    /// Whether filters are installed.
    pub fn is_on(&self) -> bool {
        self.filters.is_some()
    }

    /// The calling thread, of `kind`, enters its filter (if filters are on): from now on it can
    /// make only the system calls of `kind`'s allow-list. Call it once per thread, as early as
    /// the thread's own setup allows.
    pub fn enter(&self, kind: ThreadKind) -> Result<(), InstallError> {
        if let Some(filters) = &self.filters {
            let program = match kind {
                ThreadKind::Main => &filters.main,
                ThreadKind::Vcpu => &filters.vcpu,
                ThreadKind::Backend => &filters.backend,
            };
            report::set_thread_kind(kind);
            seccompiler::apply_filter(program)
                .map_err(|source| InstallError::Apply { kind, source })?;
        }
        if self.selftest == Some(kind) {
            selftest(kind);
        }
        Ok(())
    }
}

/// Why confinement could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConfinementError {
    /// A filter failed to compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The SIGSYS handler could not be installed.
    #[error(transparent)]
    Install(#[from] InstallError),
}

/// The system call the self-test makes: allowed to no kind.
pub const SELFTEST_SYSCALL: Syscall = Syscall {
    name: "getppid",
    number: libc::SYS_getppid,
};

fn selftest(kind: ThreadKind) {
    log::warn!(
        "seccomp self-test: the {kind} thread makes system call {} ({}), which no filter allows",
        SELFTEST_SYSCALL.number,
        SELFTEST_SYSCALL.name
    );
    // SAFETY: getppid takes no arguments and has no side effects.
    let _ = unsafe { libc::syscall(SELFTEST_SYSCALL.number) };
}

#[cfg(test)]
mod tests;
