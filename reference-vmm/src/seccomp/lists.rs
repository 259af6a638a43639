//! The allow-lists of the thread kinds: the system calls each kind was seen to make over the
//! conformance suite and the benchmarks (strace), plus those its error and exit paths need.
//! Names are printed and documented as they stand here; a unit test checks every name
//! against its number.

/// One system call: its name and its x86-64 number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// The name, as in `man 2`.
    pub name: &'static str,
    /// The number (`libc::SYS_*`).
    pub number: i64,
}

const fn sys(name: &'static str, number: i64) -> Syscall {
    Syscall { name, number }
}

/// What every kind needs: memory allocation (glibc malloc: `brk`, `mmap`, `munmap`, `mremap`,
/// `mprotect`, `madvise`), locks, condition variables and channels (`futex`), yielding, time
/// where the vDSO cannot serve it (`clock_gettime`), stderr (`write`: log lines, the SIGSYS
/// report), closing what the thread drops (`close`), signals (the kick out of `KVM_RUN`, the
/// SIGSYS handler: `rt_sigreturn`, `rt_sigprocmask`, `sigaltstack`, `restart_syscall`), and the
/// end of the process (`exit_group`, also the SIGSYS handler's `_exit`).
macro_rules! common {
    ($($extra:expr),* $(,)?) => {
        &[
            sys("write", libc::SYS_write),
            sys("close", libc::SYS_close),
            sys("brk", libc::SYS_brk),
            sys("mmap", libc::SYS_mmap),
            sys("munmap", libc::SYS_munmap),
            sys("mremap", libc::SYS_mremap),
            sys("mprotect", libc::SYS_mprotect),
            sys("madvise", libc::SYS_madvise),
            sys("futex", libc::SYS_futex),
            sys("sched_yield", libc::SYS_sched_yield),
            sys("clock_gettime", libc::SYS_clock_gettime),
            sys("rt_sigreturn", libc::SYS_rt_sigreturn),
            sys("rt_sigprocmask", libc::SYS_rt_sigprocmask),
            sys("sigaltstack", libc::SYS_sigaltstack),
            sys("restart_syscall", libc::SYS_restart_syscall),
            sys("exit_group", libc::SYS_exit_group),
            $($extra),*
        ]
    };
}

/// The main thread, once the run is set up and its threads have started: the watchdog
/// (`futex` with timeouts), the kicks of the vCPU threads (`pthread_kill`: `getpid`,
/// `tgkill`), the joins, the backend's stop (`write` to its eventfd), the result written to
/// the already open `--out` file, closing and unmapping what the run used, and removing the
/// result file after a late failure such as a panicked vCPU thread (`unlink`).
pub const MAIN: &[Syscall] = common![
    sys("getpid", libc::SYS_getpid),
    sys("tgkill", libc::SYS_tgkill),
    sys("unlink", libc::SYS_unlink),
];

/// A vCPU thread, once it has pinned itself: `ioctl` (`KVM_RUN`, `KVM_PRE_FAULT_MEMORY`,
/// register reads for a death report; any request: arguments are not filtered), `pread64` of
/// the binary stats files, remap IPC's host operations (`mmap(MAP_FIXED)` among the common
/// calls, `fallocate(PUNCH_HOLE)`), the pre-fault kick of the receiver's vCPU thread
/// (`pthread_kill`: `getpid`, `tgkill`; only where the host has `KVM_CAP_PRE_FAULT_MEMORY`),
/// and the thread's end (`exit`).
pub const VCPU: &[Syscall] = common![
    sys("ioctl", libc::SYS_ioctl),
    sys("pread64", libc::SYS_pread64),
    sys("fallocate", libc::SYS_fallocate),
    sys("getpid", libc::SYS_getpid),
    sys("tgkill", libc::SYS_tgkill),
    sys("exit", libc::SYS_exit),
];

/// The virtio ioeventfd backend thread: `epoll_wait` on the eventfds, `read` of their counts,
/// and the thread's end (`exit`).
pub const BACKEND: &[Syscall] = common![
    sys("epoll_wait", libc::SYS_epoll_wait),
    sys("read", libc::SYS_read),
    sys("exit", libc::SYS_exit),
];
