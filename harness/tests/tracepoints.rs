//! Host perf tracepoints around a real KVM run: needs root, /dev/kvm and tracefs mounted
//! (`cfg(no_tracing)` otherwise, see ci/kvm_cfg.rs; under CI=true the test runs and fails
//! without them).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pageflip_harness::bench::tracepoints::{
    Tracepoints, KVM_EXIT, KVM_USERSPACE_EXIT, RUNNER_TRACEPOINTS, TLB_FLUSH,
};
use pageflip_harness::run::images::ImageSet;
use pageflip_harness::run::layout::{Input, Layout, VmSpec};
use pageflip_harness::run::observed::ResultFile;
use pageflip_harness::run::rig::Rig;
use pageflip_harness::run::vmm::{Vmm, VMM_SUBCOMMAND};
use pageflip_interface::RunResult;
use pageflip_results::TracepointState;

/// Doorbell writes of the guest's measured phase.
const K: u64 = 1000;

/// Runs the reference VMM (the `bench` binary's `__vmm` subcommand, through a wrapper
/// script, since a `--vmm` build takes no leading arguments) with one `doorbell` guest;
/// returns its result and the VMM's process id (the wrapper's, which `exec` keeps).
fn run_doorbell(dir: &std::path::Path) -> (RunResult, u32) {
    let wrapper = dir.join("vmm");
    let pid_file = dir.join("vmm.pid");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec '{}' {VMM_SUBCOMMAND} \"$@\"\n",
            pid_file.display(),
            env!("CARGO_BIN_EXE_bench")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vmm = Vmm::at(&wrapper).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let images = ImageSet::write(&dir.join("images")).unwrap();
    let rig = Rig {
        vmm: &vmm,
        images: &images,
        work_dir: dir,
        timeout: Duration::from_secs(60),
    };
    let input = Input::Run(Layout::of(vec![VmSpec::guest(
        pageflip_workloads::DOORBELL,
        16,
        &[K],
    )]));
    let (_, seen) = rig
        .execute("tracepoints-doorbell", &input, "tracepoints-doorbell")
        .unwrap();
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    match seen.result {
        ResultFile::Parsed(r) => (*r, pid),
        other => panic!("no result: {other:?}; stderr: {}", seen.stderr),
    }
}

#[test]
#[cfg_attr(
    no_tracing,
    ignore = "needs root, /dev/kvm and tracefs (mount -t tracefs nodev /sys/kernel/tracing)"
)]
fn a_doorbell_run_is_seen_by_the_host_tracepoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut tp = Tracepoints::open(RUNNER_TRACEPOINTS);
    let states = tp.states();
    eprintln!("opened: {states:?}");
    for name in RUNNER_TRACEPOINTS {
        assert_eq!(states[*name], TracepointState::Silent, "{name} opens");
    }
    tp.start().unwrap();
    let (result, vmm_pid) = run_doorbell(dir.path());
    let counts = tp.stop().unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&counts).unwrap());
    let run_counter = |name: &str| -> u64 {
        result
            .vms
            .iter()
            .map(|vm| vm.stats.run.as_ref().expect("run stats").vcpu[name])
            .sum()
    };
    let (kvm_mmio, kvm_exits) = (run_counter("mmio_exits"), run_counter("exits"));
    eprintln!(
        "host {}: KVM run stats: mmio_exits {kvm_mmio}, exits {kvm_exits}; VMM wall {} us",
        result.host.kvm_flavour, result.wall_us
    );

    // Host-wide: every process's exits to userspace, all decoded.
    let userspace = counts.total(KVM_USERSPACE_EXIT).unwrap();
    let by = &counts.by_reason[KVM_USERSPACE_EXIT];
    assert!(by.complete, "nothing lost: {by:?}");
    assert_eq!(by.reasons.values().sum::<u64>(), userspace);
    let mmio = by.reasons.get("mmio").copied().unwrap_or(0);
    assert!(
        userspace >= K && mmio >= K,
        "{mmio} MMIO exits for {K} doorbells"
    );
    assert!(mmio >= kvm_mmio, "host-wide {mmio} < the VMM's {kvm_mmio}");
    // The VMM's own: exactly KVM's `mmio_exits` over the run (K, the warm-up, the phase
    // markers and the result records), since KVM counts and traces the same returns of
    // KVM_RUN; and nothing but MMIO (a `restart` would be a signal interrupting KVM_RUN).
    let own = by.by_process.get(&vmm_pid).cloned().unwrap_or_default();
    assert_eq!(
        own.get("mmio").copied(),
        Some(kvm_mmio),
        "VMM {vmm_pid}: {own:?}"
    );
    assert_eq!(own.len(), 1, "only MMIO exits: {own:?}");

    assert!(counts.total(TLB_FLUSH).is_some(), "tlb:tlb_flush counted");
    let kvm_exit = counts.total(KVM_EXIT).unwrap();
    if result.host.kvm_flavour == "kvm_pvm" {
        assert_eq!(kvm_exit, 0, "kvm_pvm does not fire kvm:kvm_exit");
        assert_eq!(tp.states()[KVM_EXIT], TracepointState::Silent);
    } else {
        assert!(
            kvm_exit >= kvm_exits,
            "{kvm_exit} kvm_exit events, KVM says {kvm_exits}"
        );
        assert_eq!(tp.states()[KVM_EXIT], TracepointState::Fired);
    }
    assert_eq!(tp.states()[KVM_USERSPACE_EXIT], TracepointState::Fired);

    // A second window starts from zero: none of the finished VMM's exits are in it.
    tp.start().unwrap();
    let again = tp.stop().unwrap();
    let by = &again.by_reason[KVM_USERSPACE_EXIT];
    assert!(!by.by_process.contains_key(&vmm_pid), "{by:?}");
    assert!(again.total(KVM_USERSPACE_EXIT).unwrap() < K, "{again:?}");
    assert_eq!(tp.states()[KVM_USERSPACE_EXIT], TracepointState::Fired);
}
