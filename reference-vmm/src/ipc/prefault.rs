//! Pre-faulting a receiver's landing extents after a remap (run config `pre_fault`), with
//! `KVM_PRE_FAULT_MEMORY` where the host offers it (`KVM_CAP_PRE_FAULT_MEMORY`, Linux 6.10+
//! with a TDP MMU: not kvm_pvm, not kvm_amd on 6.1).
//!
//! The ioctl is a vCPU ioctl, and KVM holds a vCPU's mutex while it runs, so only the
//! receiver's own thread can make it: the engine queues the landing extents for the receiver
//! and kicks its thread out of `KVM_RUN` with a signal; the thread pre-faults them before it
//! enters the guest again ([`PreFaulter::run`]). A kick that lands just before the thread
//! enters `KVM_RUN` is lost, and the extents wait for the thread's next exit: pre-faulting
//! saves faults, it never changes what the guest sees.

use std::sync::Mutex;

use kvm_bindings::{kvm_pre_fault_memory, KVM_CAP_PRE_FAULT_MEMORY};
use kvm_ioctls::VcpuFd;
use pageflip_abi::ipc::Extent;
use pageflip_abi::PAGE_SIZE;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;
use vmm_sys_util::signal::SIGRTMIN;

/// The ioctl number (`_IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)`, `linux/kvm.h`).
mod nr {
    use kvm_bindings::kvm_pre_fault_memory;
    use vmm_sys_util::ioctl_iowr_nr;
    ioctl_iowr_nr!(
        KVM_PRE_FAULT_MEMORY,
        kvm_bindings::KVMIO,
        0xd5,
        kvm_pre_fault_memory
    );
}
use nr::KVM_PRE_FAULT_MEMORY;

/// Whether this host's KVM offers `KVM_PRE_FAULT_MEMORY` (asked of `/dev/kvm`; false if it
/// cannot be opened).
pub fn host_offers() -> bool {
    kvm_ioctls::Kvm::new()
        .is_ok_and(|k| k.check_extension_raw(u64::from(KVM_CAP_PRE_FAULT_MEMORY)) > 0)
}

/// Whether the VM behind `vm` offers `KVM_PRE_FAULT_MEMORY`.
pub fn available(vm: &kvm_ioctls::VmFd) -> bool {
    vm.check_extension_raw(u64::from(KVM_CAP_PRE_FAULT_MEMORY)) > 0
}

/// Pre-faults `len` bytes from `gpa` of the vCPU's VM; the error number if KVM refused.
fn pre_fault(vcpu: &VcpuFd, gpa: u64, len: u64) -> Result<(), i32> {
    let mut arg = kvm_pre_fault_memory {
        gpa,
        size: len,
        ..Default::default()
    };
    while arg.size > 0 {
        // SAFETY: KVM_PRE_FAULT_MEMORY reads and updates a `kvm_pre_fault_memory` that lives
        // on this stack frame for the whole call; `vcpu` is a valid vCPU fd.
        let ret = unsafe { ioctl_with_mut_ref(vcpu, KVM_PRE_FAULT_MEMORY(), &mut arg) };
        if ret < 0 {
            match std::io::Error::last_os_error().raw_os_error().unwrap_or(0) {
                // interrupted or partial: `arg` says what is left
                libc::EINTR | libc::EAGAIN => continue,
                e => return Err(e),
            }
        }
    }
    Ok(())
}

/// One VM's pending landing extents, the thread that runs its vCPU, and the pages done.
#[derive(Debug, Default)]
struct Pending {
    extents: Vec<Extent>,
    thread: Option<libc::pthread_t>,
    pages: u64,
}

/// The run's pre-fault queues, one per VM.
#[derive(Debug)]
pub struct PreFaulter {
    vms: Vec<Mutex<Pending>>,
    /// The first ioctl failure, if any (later extents are still tried: a failure may be
    /// particular to one range).
    failed: Mutex<Option<String>>,
}

impl PreFaulter {
    /// Queues for `num_vms` VMs.
    pub fn new(num_vms: usize) -> PreFaulter {
        PreFaulter {
            vms: (0..num_vms).map(|_| Mutex::default()).collect(),
            failed: Mutex::new(None),
        }
    }

    fn pending(&self, vm: usize) -> std::sync::MutexGuard<'_, Pending> {
        self.vms[vm].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the calling thread runs VM `vm`'s vCPU.
    pub fn register(&self, vm: usize) {
        // SAFETY: pthread_self has no preconditions.
        self.pending(vm).thread = Some(unsafe { libc::pthread_self() });
    }

    /// Records that VM `vm`'s vCPU thread is ending: it is kicked no more (its `pthread_t`
    /// becomes invalid once the runner joins it), and nothing more is queued for it.
    pub fn unregister(&self, vm: usize) {
        let mut p = self.pending(vm);
        p.thread = None;
        p.extents.clear();
    }

    /// Queues `extents` of VM `vm` and kicks its vCPU thread out of the guest (a VM whose
    /// vCPU has ended gets nothing).
    pub fn queue(&self, vm: usize, extents: &[Extent]) {
        let mut p = self.pending(vm);
        if let Some(t) = p.thread {
            p.extents.extend_from_slice(extents);
            // SAFETY: `t` is the thread of a running vCPU of this run: it is cleared (under
            // this lock) before the thread leaves its loop, so the thread has not ended;
            // SIGRTMIN has a no-op handler, so the only effect is that KVM_RUN returns EINTR.
            unsafe { libc::pthread_kill(t, SIGRTMIN()) };
        }
    }

    /// Pages of VM `vm` pre-faulted so far.
    pub fn pages(&self, vm: usize) -> u64 {
        self.pending(vm).pages
    }

    /// Pre-faults VM `vm`'s queued extents through its vCPU (called by the vCPU's thread
    /// before it enters the guest).
    pub fn run(&self, vm: usize, vcpu: &VcpuFd) {
        let extents = std::mem::take(&mut self.pending(vm).extents);
        if extents.is_empty() {
            return;
        }
        let mut pages = 0;
        for e in extents {
            let len = u64::from(e.pages) * PAGE_SIZE;
            match pre_fault(vcpu, e.gpa, len) {
                Ok(()) => pages += u64::from(e.pages),
                Err(errno) => {
                    let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                    if failed.is_none() {
                        let why = std::io::Error::from_raw_os_error(errno);
                        log::warn!("KVM_PRE_FAULT_MEMORY at GPA {:#x} failed: {why}", e.gpa);
                        *failed = Some(format!("KVM_PRE_FAULT_MEMORY failed: {why}"));
                    }
                }
            }
        }
        self.pending(vm).pages += pages;
    }

    /// Why pre-faulting failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
