use std::collections::HashSet;

use super::*;

#[test]
fn every_kinds_filter_compiles() {
    for kind in ThreadKind::ALL {
        let program = compile(kind).unwrap_or_else(|e| panic!("{e}"));
        // The architecture check, one comparison per allowed call, the default action.
        assert!(
            program.len() > kind.allowed().len(),
            "{kind}: {} instructions for {} calls",
            program.len(),
            kind.allowed().len()
        );
    }
}

#[test]
fn the_allow_lists_have_no_duplicates() {
    for kind in ThreadKind::ALL {
        let mut names = HashSet::new();
        let mut numbers = HashSet::new();
        for s in kind.allowed() {
            assert!(names.insert(s.name), "{kind}: {} twice", s.name);
            assert!(
                numbers.insert(s.number),
                "{kind}: number {} twice",
                s.number
            );
        }
    }
}

#[test]
fn every_name_matches_its_number() {
    // The names table comes from the kernel's header, the numbers from the libc crate.
    for kind in ThreadKind::ALL {
        for s in kind.allowed().iter().chain([&SELFTEST_SYSCALL]) {
            assert_eq!(names::name(s.number), s.name, "{kind}: number {}", s.number);
        }
    }
}

#[test]
fn the_names_table_is_the_kernels() {
    assert_eq!(names::name(libc::SYS_read), "read");
    assert_eq!(names::name(libc::SYS_getppid), "getppid");
    assert_eq!(names::name(libc::SYS_ioctl), "ioctl");
    assert_eq!(names::name(libc::SYS_io_uring_setup), "io_uring_setup");
    assert_eq!(names::name(libc::SYS_futex_waitv), "futex_waitv");
    for hole in [-1, 400, 100_000] {
        assert_eq!(names::name(hole), "unknown", "{hole}");
    }
}

#[test]
fn the_selftest_call_is_on_no_list() {
    for kind in ThreadKind::ALL {
        assert!(
            !kind.allowed().contains(&SELFTEST_SYSCALL),
            "{kind} allows {}",
            SELFTEST_SYSCALL.name
        );
    }
}

#[test]
fn the_report_names_the_thread_kind_and_the_call() {
    let line = report::report_line(Some(ThreadKind::Vcpu), libc::SYS_getppid);
    assert_eq!(
        line.text(),
        "pageflip-vmm: error: seccomp: the vcpu thread made system call 110 (getppid), which its \
         filter does not allow; rerun with --no-seccomp to debug\n"
    );
    let line = report::report_line(None, 100_000);
    assert!(
        line.text().starts_with(
            "pageflip-vmm: error: seccomp: the unknown thread made system call 100000 (unknown)"
        ),
        "{}",
        line.text()
    );
}

#[test]
fn thread_kinds_parse_from_their_names() {
    for kind in ThreadKind::ALL {
        assert_eq!(kind.name().parse::<ThreadKind>().unwrap(), kind);
        assert_eq!(ThreadKind::from_code(kind.code()), Some(kind));
    }
    assert!("gpu".parse::<ThreadKind>().is_err());
    assert_eq!(ThreadKind::from_code(0), None);
}

#[test]
fn off_installs_nothing() {
    let c = Confinement::off();
    assert!(!c.is_on());
    c.enter(ThreadKind::Vcpu).unwrap();
    assert_eq!(
        report::thread_kind(),
        None,
        "no kind recorded without a filter"
    );
}
