//! One VM: its KVM VM fd, memory, vCPU and stats files, set up to enter its guest at CPL3.

use std::fs::File;
use std::sync::Arc;

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_CAP_BINARY_STATS_FD, KVM_MEM_READONLY};
use kvm_ioctls::{IoEventAddress, Kvm, VcpuFd, VmFd};
use pageflip_abi::PAGE_SIZE;
use pageflip_abi::{BootInfo, ABI_VERSION, BOOT_INFO_GPA, BOOT_INFO_MAGIC, MMIO_BASE};
use vmm_sys_util::eventfd::EventFd;

use crate::boot;
use crate::elf::{GuestImage, ImageError};
use crate::kvm_stats::{StatsError, StatsFd};
use crate::memory::{GuestRam, MemoryError};

/// Address KVM may use for the VMX real-mode TSS (three pages, outside guest memory and the
/// MMIO device). Ignored by SVM and PVM.
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;

/// What a transport adds to one VM's memory when the VM is set up.
#[derive(Clone, Debug, Default)]
pub struct VmMemory {
    /// A page of the VM's own memory to map read-only, so that guest stores to it exit as
    /// MMIO writes the transport emulates (an injected fault).
    pub readonly_page: Option<u64>,
    /// A region mapped as an extra memslot at a GPA (the shared region).
    pub extra: Option<(u64, Arc<GuestRam>)>,
}

/// What a VM is built from.
#[derive(Debug)]
pub struct VmSpec<'a> {
    /// Index in the run.
    pub id: u32,
    /// Name for logs and results.
    pub name: String,
    /// Memory size in bytes.
    pub mem_size: u64,
    /// The checked guest image.
    pub image: &'a GuestImage,
    /// Ids of the other VMs of the run.
    pub peers: Vec<u32>,
    /// Number of VMs in the run.
    pub num_vms: u32,
    /// Run parameters for the guest.
    pub params: &'a [u64],
    /// The run's page pool, of which this VM's memory is `[memfd_offset, + mem_size)`.
    pub memfd: Arc<File>,
    /// Where this VM's memory starts in the pool.
    pub memfd_offset: u64,
    /// The run's transport for the guest: one of `pageflip_abi::TRANSPORT_*`.
    pub transport: u32,
    /// What the run's transport adds to this VM's memory map.
    pub memory: VmMemory,
}

/// Why a VM could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VmSetupError {
    /// A KVM ioctl failed.
    #[error("{what} failed: {source}")]
    Kvm {
        /// The ioctl.
        what: &'static str,
        /// KVM's error.
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be created.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The image could not be loaded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Writing the VMM's tables into guest memory failed.
    #[error("writing the boot tables into guest memory failed")]
    Tables,
}

/// The KVM stats files of a VM and its vCPU, when the host has binary stats.
#[derive(Debug)]
pub struct VmStats {
    /// Stats of the vCPU fd.
    pub vcpu: StatsFd,
    /// Stats of the VM fd.
    pub vm: StatsFd,
}

/// A VM ready to run.
#[derive(Debug)]
pub struct Vm {
    /// Index in the run.
    pub id: u32,
    /// Name for logs and results.
    pub name: String,
    /// Guest memory.
    pub ram: Arc<GuestRam>,
    /// The vCPU.
    pub vcpu: VcpuFd,
    /// Stats, if the host offers them.
    pub stats: Option<VmStats>,
    /// The vCPU's TSC frequency, if KVM reports it.
    pub tsc_khz: Option<u64>,
    // Kept alive as long as the VM fd: its memslot points into it.
    _extra: Option<Arc<GuestRam>>,
    // Keep the VM fd alive as long as the vCPU and memory slot.
    vm_fd: VmFd,
}

impl Vm {
    /// Whether KVM offers `KVM_PRE_FAULT_MEMORY` for this VM.
    pub fn pre_fault_available(&self) -> bool {
        crate::ipc::prefault::available(&self.vm_fd)
    }
}

fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmSetupError {
    move |source| VmSetupError::Kvm { what, source }
}

impl Vm {
    /// Creates a VM from `spec`, loads its image and sets its vCPU at the image entry.
    pub fn create(kvm: &Kvm, cpuid: &CpuId, spec: &VmSpec) -> Result<Vm, VmSetupError> {
        let vm_fd = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        if let Err(e) = vm_fd.set_tss_address(KVM_TSS_ADDRESS) {
            log::debug!(
                "{}: KVM_SET_TSS_ADDR not supported here ({e}); not needed",
                spec.name
            );
        }
        let ram = Arc::new(GuestRam::map(
            spec.memfd.clone(),
            spec.memfd_offset,
            spec.mem_size,
        )?);
        let mut slots: Vec<(u64, u64, u32, u64)> = memslots(spec)
            .into_iter()
            .map(|(gpa, size, flags)| (gpa, size, flags, ram.host_base() + gpa))
            .collect();
        if let Some((gpa, extra)) = &spec.memory.extra {
            slots.push((*gpa, extra.size(), 0, extra.host_base()));
        }
        for (slot, (gpa, size, flags, hva)) in slots.into_iter().enumerate() {
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                flags,
                guest_phys_addr: gpa,
                memory_size: size,
                userspace_addr: hva,
            };
            // SAFETY: the region lies inside the mapping of `ram` or of the shared region,
            // which live in `Vm` as long as the VM fd does (KVM only touches guest memory
            // while a vCPU runs, and `Vm` owns the vCPU too).
            unsafe { vm_fd.set_user_memory_region(region) }
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
        }
        if !boot::write_system_tables(&ram) {
            return Err(VmSetupError::Tables);
        }
        spec.image.load(&ram)?;

        let vcpu = vm_fd.create_vcpu(0).map_err(kvm_err("KVM_CREATE_VCPU"))?;
        vcpu.set_cpuid2(cpuid).map_err(kvm_err("KVM_SET_CPUID2"))?;
        let mut sregs = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        boot::long_mode_cpl3(&mut sregs);
        vcpu.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
        vcpu.set_fpu(&boot::fpu()).map_err(kvm_err("KVM_SET_FPU"))?;
        vcpu.set_regs(&boot::entry_regs(spec.image.entry))
            .map_err(kvm_err("KVM_SET_REGS"))?;
        let tsc_khz = vcpu.get_tsc_khz().ok().map(u64::from).filter(|&k| k > 0);

        let mut info = BootInfo::zeroed();
        info.magic = BOOT_INFO_MAGIC;
        info.abi_version = ABI_VERSION;
        info.vm_id = spec.id;
        info.num_vms = spec.num_vms;
        info.num_peers = spec.peers.len() as u32;
        info.peer_ids[..spec.peers.len()].copy_from_slice(&spec.peers);
        info.mem_size = spec.mem_size;
        info.free_start = spec.image.end;
        info.tsc_khz = tsc_khz.unwrap_or(0);
        info.num_params = spec.params.len() as u32;
        info.params[..spec.params.len()].copy_from_slice(spec.params);
        info.mmio_base = MMIO_BASE;
        info.transport = spec.transport;
        if !ram.write_pod(BOOT_INFO_GPA, &info) {
            return Err(VmSetupError::Tables);
        }

        let stats = open_stats(kvm, &vm_fd, &vcpu)
            .map_err(|e| log::warn!("{}: KVM binary stats unavailable: {e}", spec.name))
            .ok()
            .flatten();
        Ok(Vm {
            id: spec.id,
            name: spec.name.clone(),
            ram,
            vcpu,
            stats,
            tsc_khz,
            _extra: spec.memory.extra.as_ref().map(|(_, ram)| ram.clone()),
            vm_fd,
        })
    }

    /// Registers `fd` with KVM to be signalled, instead of an exit, by every 4-byte guest
    /// write of `datamatch` to the MMIO address `gpa`.
    pub fn register_ioevent(
        &self,
        fd: &EventFd,
        gpa: u64,
        datamatch: u32,
    ) -> Result<(), VmSetupError> {
        self.vm_fd
            .register_ioevent(fd, &IoEventAddress::Mmio(gpa), datamatch)
            .map_err(kvm_err("KVM_IOEVENTFD"))
    }
}

/// The memslots of a VM as (GPA, size, flags): all of memory in one slot, or three with one
/// page read-only.
fn memslots(spec: &VmSpec) -> Vec<(u64, u64, u32)> {
    let Some(page) = spec.memory.readonly_page else {
        return vec![(0, spec.mem_size, 0)];
    };
    let end = page + PAGE_SIZE;
    vec![
        (0, page, 0),
        (page, PAGE_SIZE, KVM_MEM_READONLY),
        (end, spec.mem_size - end, 0),
    ]
}

fn open_stats(kvm: &Kvm, vm: &VmFd, vcpu: &VcpuFd) -> Result<Option<VmStats>, StatsError> {
    if kvm.check_extension_raw(u64::from(KVM_CAP_BINARY_STATS_FD)) <= 0 {
        return Ok(None);
    }
    Ok(Some(VmStats {
        vcpu: StatsFd::open(vcpu)?,
        vm: StatsFd::open(vm)?,
    }))
}
