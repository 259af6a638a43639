//! The report on a disallowed system call: the SIGSYS handler, and the thread kind it names.
//!
//! A filter's mismatch action is `SECCOMP_RET_TRAP`: the kernel does not carry out the call and
//! sends SIGSYS to the thread, with the system call's number in the siginfo. The handler writes
//! one line to stderr and ends the process with [`EXIT_CODE`]:
//!
//! ```text
//! pageflip-vmm: error: seccomp: the vcpu thread made system call 110 (getppid), which its filter does not allow; rerun with --no-seccomp to debug
//! ```
//!
//! Everything here is async-signal-safe: a thread-local byte, a static name table, a stack
//! buffer, `write(2)` and `_exit(2)` (both on every allow-list).

use std::cell::Cell;

use super::{names, ThreadKind};

/// The exit code of a run ended by a disallowed system call: `INTERNAL`, a VMM failure
/// (`docs/vmm-interface.md`).
pub const EXIT_CODE: i32 = pageflip_interface::exit::INTERNAL;

/// `si_code` of a SIGSYS raised by a seccomp filter (`SYS_SECCOMP`).
const SYS_SECCOMP: i32 = 1;

/// Offset of `si_syscall` (an `int`) in x86-64's `siginfo_t`: after `si_signo`, `si_errno`,
/// `si_code`, padding (16 bytes) and `_sigsys._call_addr` (a pointer).
const SI_SYSCALL_OFFSET: usize = 24;

thread_local! {
    /// The calling thread's kind ([`ThreadKind::code`]), 0 for a thread that entered no filter.
    static KIND: Cell<u8> = const { Cell::new(0) };
}

/// Records the calling thread's kind for the report (before its filter is applied).
pub fn set_thread_kind(kind: ThreadKind) {
    KIND.with(|k| k.set(kind.code()));
}

/// The calling thread's recorded kind.
pub fn thread_kind() -> Option<ThreadKind> {
    KIND.with(|k| ThreadKind::from_code(k.get()))
}

/// A fixed buffer that silently truncates: formatting without allocation.
pub(super) struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, s: &str) -> &mut Line {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }

    fn number(&mut self, n: i64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            self.push("-");
        }
        // The digits are ASCII.
        self.push(std::str::from_utf8(&digits[i..]).unwrap_or("?"))
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The line as text (for the tests).
    #[cfg(test)]
    pub(super) fn text(&self) -> &str {
        std::str::from_utf8(self.bytes()).expect("the report is ASCII")
    }
}

/// The report line for `kind` making system call `number` (what the handler writes).
pub(super) fn report_line(kind: Option<ThreadKind>, number: i64) -> Line {
    let mut line = Line::new();
    line.push("pageflip-vmm: error: seccomp: the ")
        .push(kind.map_or("unknown", ThreadKind::name))
        .push(" thread made system call ")
        .number(number)
        .push(" (")
        .push(names::name(number))
        .push("), which its filter does not allow; rerun with --no-seccomp to debug\n");
    line
}

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for a handler installed with SA_SIGINFO.
    let code = unsafe { (*info).si_code };
    let line = if code == SYS_SECCOMP {
        // SAFETY: for SYS_SECCOMP the union holds `_sigsys`, whose `_syscall` int lies at
        // SI_SYSCALL_OFFSET inside the (128-byte) siginfo_t.
        let number = unsafe {
            info.cast::<u8>()
                .add(SI_SYSCALL_OFFSET)
                .cast::<i32>()
                .read()
        };
        report_line(thread_kind(), i64::from(number))
    } else {
        let mut line = Line::new();
        line.push("pageflip-vmm: error: SIGSYS not raised by a seccomp filter (si_code ")
            .number(i64::from(code))
            .push(")\n");
        line
    };
    // SAFETY: write(2) of a valid buffer to stderr and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, line.bytes().as_ptr().cast(), line.len);
        libc::_exit(EXIT_CODE);
    }
}

/// Installs the process's SIGSYS handler.
pub fn install_handler() -> std::io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed is a valid empty action.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigsys as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action.sa_mask` is a valid sigset_t to clear.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is a valid sigaction whose handler has the SA_SIGINFO signature.
    let ret = unsafe { libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
