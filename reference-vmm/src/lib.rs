//! pageflip's reference KVM VMM: runs 1 to 8 VMs in one process, each with its own KVM VM fd,
//! memfd-backed memory and one vCPU thread, their guests at CPL3 in long mode talking to the
//! VMM through the pageflip MMIO device (`docs/abi.md`). The VMs of a run exchange messages
//! over one transport: remap IPC ([`ipc`], `remap` or `copy`), the virtio datagram device
//! ([`virtio`]), or a shared region ([`shmem`]). Driven through the VMM-build
//! interface (`docs/vmm-interface.md`) by [`cli::run_cli`] or [`runner::run`].

pub mod boot;
pub mod cli;
pub mod control;
pub mod device;
pub mod elf;
#[cfg(test)]
pub mod fuzz_seed;
pub mod guest_errors;
pub mod host;
pub mod inject;
pub mod ipc;
pub mod kvm_stats;
pub mod memory;
pub mod runner;
pub mod seccomp;
pub mod shmem;
pub mod transport;
pub mod vcpu;
pub mod virtio;
pub mod vm;

use kvm_ioctls::Kvm;

/// Names of the scalar vCPU and VM statistics this host exposes, from a throwaway VM.
pub fn probe_stat_names(kvm: &Kvm) -> Result<serde_json::Value, String> {
    let vm = kvm.create_vm().map_err(|e| e.to_string())?;
    let vcpu = vm.create_vcpu(0).map_err(|e| e.to_string())?;
    let v = kvm_stats::StatsFd::open(&vcpu).map_err(|e| e.to_string())?;
    let m = kvm_stats::StatsFd::open(&vm).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "vcpu": v.names().collect::<Vec<_>>(),
        "vm": m.names().collect::<Vec<_>>(),
        "unavailable": v.missing(kvm_stats::WELL_KNOWN_VCPU).into_iter()
            .chain(m.missing(kvm_stats::WELL_KNOWN_VM)).collect::<Vec<_>>(),
    }))
}
