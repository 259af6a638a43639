//! Structures the guest and the VMM exchange through guest memory.

use crate::{MAX_PARAMS, MAX_VMS};

/// Value of [`BootInfo::magic`]: "PFBOOTIN" in little-endian bytes.
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"PFBOOTIN");

/// [`BootInfo::transport`]: no transport, the VMs share nothing.
pub const TRANSPORT_NONE: u32 = 0;
/// [`BootInfo::transport`]: remap-IPC queues (`remap`, `remap-per-page`, `remap-huge` or
/// `copy`), control structure at
/// [`crate::ipc::IPC_HEADER_GPA`].
pub const TRANSPORT_QUEUES: u32 = 1;
/// [`BootInfo::transport`]: the virtio datagram device at [`crate::virtio::VIRTIO_MMIO_GPA`].
pub const TRANSPORT_VIRTIO: u32 = 2;
/// [`BootInfo::transport`]: the shared region at [`crate::shmem::SHMEM_GPA`].
pub const TRANSPORT_SHMEM: u32 = 3;

/// Written by the VMM at [`crate::BOOT_INFO_GPA`] before the guest starts; read-only for the guest.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// This VM's id: its index in the run's VM list.
    pub vm_id: u32,
    /// Number of VMs in the run.
    pub num_vms: u32,
    /// Number of valid entries in `peer_ids`.
    pub num_peers: u32,
    /// Ids of the other VMs of the run, ascending.
    pub peer_ids: [u32; MAX_VMS],
    /// Size of guest memory in bytes (memory is `[0, mem_size)`).
    pub mem_size: u64,
    /// First page-aligned GPA above the guest image: free memory is `[free_start, mem_size)`.
    pub free_start: u64,
    /// Guest TSC frequency in kHz as KVM reports it, 0 if unknown.
    pub tsc_khz: u64,
    /// Number of valid entries in `params`.
    pub num_params: u32,
    /// The run's transport: one of the `TRANSPORT_*` constants.
    pub transport: u32,
    /// Run parameters from the harness; their meaning is the guest's.
    pub params: [u64; MAX_PARAMS],
    /// GPA of the pageflip MMIO device.
    pub mmio_base: u64,
}

impl BootInfo {
    /// A boot info with every field zero.
    pub const fn zeroed() -> BootInfo {
        BootInfo {
            magic: 0,
            abi_version: 0,
            vm_id: 0,
            num_vms: 0,
            num_peers: 0,
            peer_ids: [0; MAX_VMS],
            mem_size: 0,
            free_start: 0,
            tsc_khz: 0,
            num_params: 0,
            transport: TRANSPORT_NONE,
            params: [0; MAX_PARAMS],
            mmio_base: 0,
        }
    }
}

/// Kind of a [`ResultRecord`], like kvm-unit-tests' PASS/FAIL/SKIP lines.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The named check passed.
    Pass = 1,
    /// The named check failed.
    Fail = 2,
    /// The named check did not run.
    Skip = 3,
}

impl RecordKind {
    /// Decodes [`ResultRecord::kind`].
    pub const fn from_u32(v: u32) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Pass,
            2 => RecordKind::Fail,
            3 => RecordKind::Skip,
            _ => return None,
        })
    }
}

/// Length of [`ResultRecord::name`].
pub const RECORD_NAME_LEN: usize = 64;
/// Length of [`ResultRecord::message`].
pub const RECORD_MESSAGE_LEN: usize = 240;

/// One named result, written by the guest in its memory; its GPA is written to
/// [`crate::mmio::RESULT`]. Text is UTF-8; the VMM replaces invalid bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultRecord {
    /// A [`RecordKind`] value.
    pub kind: u32,
    /// Bytes used in `name` (1..=[`RECORD_NAME_LEN`]).
    pub name_len: u32,
    /// Bytes used in `message` (0..=[`RECORD_MESSAGE_LEN`]).
    pub message_len: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// The check's name.
    pub name: [u8; RECORD_NAME_LEN],
    /// Free text: what was expected and what was seen.
    pub message: [u8; RECORD_MESSAGE_LEN],
}

impl ResultRecord {
    /// An empty record (kind 0 is invalid until set).
    pub const fn zeroed() -> ResultRecord {
        ResultRecord {
            kind: 0,
            name_len: 0,
            message_len: 0,
            reserved: 0,
            name: [0; RECORD_NAME_LEN],
            message: [0; RECORD_MESSAGE_LEN],
        }
    }
}

/// Describes samples in guest memory; its GPA is written to [`crate::mmio::SAMPLES`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleDesc {
    /// GPA of the first `u64` sample (8-byte aligned).
    pub gpa: u64,
    /// Number of samples (1..=[`crate::mmio::SAMPLES_MAX`]).
    pub count: u64,
}

const _: () = assert!(core::mem::size_of::<BootInfo>() == 224);
const _: () = assert!(core::mem::size_of::<ResultRecord>() == 320);
const _: () = assert!(core::mem::size_of::<SampleDesc>() == 16);
