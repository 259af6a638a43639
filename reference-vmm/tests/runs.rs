//! The reference VMM run through its library API on real KVM.

mod common;

use std::time::Instant;

use pageflip_interface::{RunOutcome, VmStatus};

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn hello_runs_at_cpl3_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(&[(common::guest(dir.path(), "hello"), 8, vec![5])], 10_000);
    let r = pageflip_vmm::runner::run(&cfg, Instant::now(), Default::default()).unwrap();
    assert_eq!(r.outcome, RunOutcome::Completed);
    let vm = &r.vms[0];
    assert_eq!(
        vm.status,
        VmStatus::Done { exit_code: 0 },
        "console: {}",
        vm.console
    );
    assert!(
        vm.console.contains("hello from VM 0 of 1"),
        "{}",
        vm.console
    );
    assert!(
        vm.summary.pass >= 2 && vm.summary.fail == 0,
        "{:?}",
        vm.records
    );
    assert!(vm.boot_us.is_some() && vm.first_record_us >= vm.boot_us);
    assert!(vm.stats.available, "this host has binary stats");
    let run = vm.stats.run.as_ref().unwrap();
    assert!(run.vcpu["exits"] > 0 && run.vcpu["mmio_exits"] > 0);
    for missing in &vm.stats.unavailable {
        assert!(!run.vcpu.contains_key(missing) && !run.vm.contains_key(missing));
    }
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn stop_on_failure_stops_the_others_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let fault = common::guest(dir.path(), "fault");
    let spin = common::guest(dir.path(), "spin");
    let cfg = common::config(&[(fault, 8, vec![1]), (spin, 8, vec![])], 60_000);
    let t = Instant::now();
    let r = pageflip_vmm::runner::run(&cfg, Instant::now(), Default::default()).unwrap();
    assert_eq!(r.outcome, RunOutcome::Completed);
    assert_eq!(r.vms[0].status, VmStatus::Shutdown);
    assert_eq!(r.vms[1].status, VmStatus::Stopped);
    assert!(
        t.elapsed().as_secs() < 30,
        "the spinning VM was not stopped"
    );
    let death = r.vms[0].death.as_ref().unwrap();
    assert!(death.registers["rip"] >= pageflip_abi::IMAGE_BASE);
    assert_eq!(death.registers["cpl"], 3, "the guest runs at CPL3");
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn shmem_transport_runs_two_guests_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let hello = common::guest(dir.path(), "hello");
    let mut cfg = common::config(&[(hello.clone(), 8, vec![1]), (hello, 8, vec![1])], 20_000);
    cfg.transport = pageflip_interface::TransportConfig::Shmem;
    let r = pageflip_vmm::runner::run(&cfg, Instant::now(), Default::default()).unwrap();
    assert_eq!(r.outcome, RunOutcome::Completed);
    for vm in &r.vms {
        assert_eq!(vm.status, VmStatus::Done { exit_code: 0 }, "{}", vm.console);
    }
    let t = r.transport.expect("a shmem run reports its transport");
    assert_eq!(t.kind, "shmem");
    assert_eq!(t.vms.len(), 2);
    assert!(t.vms.iter().all(|v| v.sent == 0 && v.virtio.is_none()));
}

#[test]
#[cfg_attr(no_kvm, ignore = "needs /dev/kvm (missing on this host)")]
fn virtio_transports_start_and_stop_cleanly() {
    use pageflip_interface::{NotifyMode, TransportConfig};
    let dir = tempfile::tempdir().unwrap();
    let hello = common::guest(dir.path(), "hello");
    for notify in [NotifyMode::Ioeventfd, NotifyMode::Userspace] {
        let mut cfg = common::config(
            &[(hello.clone(), 8, vec![1]), (hello.clone(), 8, vec![1])],
            20_000,
        );
        cfg.transport = TransportConfig::Virtio { notify };
        let r = pageflip_vmm::runner::run(&cfg, Instant::now(), Default::default()).unwrap();
        assert_eq!(r.outcome, RunOutcome::Completed);
        for vm in &r.vms {
            assert_eq!(vm.status, VmStatus::Done { exit_code: 0 }, "{}", vm.console);
            assert!(vm.guest_errors.is_empty(), "{:?}", vm.guest_errors);
        }
        let t = r.transport.expect("a virtio run reports its transport");
        assert_eq!(t.kind, cfg.transport.name());
        let v = t.vms[0].virtio.as_ref().expect("virtio counters");
        assert_eq!(v.notify, notify.name());
        assert_eq!((v.features, v.tx_chains), (None, 0), "hello has no driver");
    }
}
