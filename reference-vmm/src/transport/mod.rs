//! The transport seam: what a run's transport contributes to the VMM, so that the runner, the
//! VMs and the vCPU loop know no transport. [`plan::from_config`] is the one place that turns
//! a `TransportConfig` into one; before the VMs exist a [`TransportSetup`] says what they need
//! (pool pages, `BootInfo::transport`, extra memslots), and once they exist it starts as a
//! [`Transport`]: the MMIO ranges it owns, the hook run before an exit is handled (remap IPC's
//! deferred drain), blocking reads, its backend thread, its report and its guest errors.
//!
//! The transports: none ([`NoTransport`]), remap and copy IPC (`crate::ipc::transport`), the
//! virtio datagram device (`crate::virtio::transport`) and the shared region
//! (`crate::shmem`).

use std::fs::File;
use std::sync::Arc;

use pageflip_abi::TRANSPORT_NONE;
use pageflip_interface::TransportReport;

use crate::guest_errors::GuestErrorLog;

use crate::control::StopFlag;
use crate::seccomp::Confinement;
use crate::vm::{Vm, VmMemory, VmSetupError};

pub mod plan;

/// The run's memory as a transport finds it once the VMs exist.
#[derive(Debug)]
pub struct RunMemory<'a> {
    /// The VMs, in id order.
    pub vms: &'a [Vm],
    /// Each VM's memory size in bytes.
    pub sizes: &'a [u64],
    /// The run's memfd: every VM's memory, then the pool.
    pub memfd: &'a Arc<File>,
    /// How the run's threads are confined: a thread the transport starts enters its filter.
    pub confinement: &'a Confinement,
}

/// Why a transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Something of VM `vm` could not be set up for the transport.
    #[error("setting up vms[{vm}] for the transport failed: {source}")]
    Setup {
        /// Index of the VM.
        vm: usize,
        /// What failed.
        source: VmSetupError,
    },
    /// A backend thread could not be started.
    #[error("starting the transport's backend failed: {0}")]
    Backend(String),
}

/// A transport before its VMs exist.
pub trait TransportSetup {
    /// The run's `BootInfo::transport` value (`pageflip_abi::TRANSPORT_*`).
    fn boot_kind(&self) -> u32;

    /// Free pages the run's memfd needs beyond the VMs' memory.
    fn pool_pages(&self) -> u32 {
        0
    }

    /// Whether guest memory and the pool live in 2 MiB hugetlbfs pages.
    fn huge_pages(&self) -> bool {
        false
    }

    /// What VM `vm` needs in its memory map.
    fn vm_memory(&self, _vm: u32) -> VmMemory {
        VmMemory::default()
    }

    /// Starts the transport over the VMs of `run` (its backend threads too); the vCPU threads
    /// have not started yet.
    fn start(self: Box<Self>, run: &RunMemory<'_>) -> Result<Arc<dyn Transport>, StartError>;
}

/// What a vCPU exit may be to a transport: its own MMIO accesses, the hook before every exit,
/// the doorbell and blocking reads of the pageflip device, and the end of the run.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Whether the VMs have remap-IPC queues (the pageflip device's IPC registers work).
    fn has_queues(&self) -> bool {
        false
    }

    /// Runs before VM `vm`'s exit is handled, for every exit but a doorbell write (remap
    /// IPC's deferred sends leave here).
    fn before_exit(&self, _vm: usize) {}

    /// Whether a read of the pageflip device's register at `offset` blocks in
    /// [`Transport::blocking_read`] instead of being answered by the device.
    fn blocks(&self, _offset: u64) -> bool {
        false
    }

    /// A blocking read of the pageflip device's register at `offset` by VM `vm`: returns its
    /// value when there is one, or when `stop` is set.
    fn blocking_read(&self, _vm: usize, _offset: u64, _stop: &StopFlag) -> u64 {
        0
    }

    /// A doorbell write of `value` by VM `vm` to the pageflip device; false if the value is
    /// not a doorbell (the device refuses it).
    fn doorbell(&self, _vm: usize, _value: u64) -> bool {
        false
    }

    /// Whether an MMIO access (a write if `write`) at `gpa`, outside the pageflip device, is
    /// the transport's (an access nothing owns kills the VM).
    fn owns(&self, _gpa: u64, _write: bool) -> bool {
        false
    }

    /// An MMIO write by VM `vm` at `gpa`, which the transport [owns](Transport::owns).
    fn mmio_write(&self, _vm: usize, _gpa: u64, _data: &[u8]) {}

    /// An MMIO read by VM `vm` at `gpa`, which the transport [owns](Transport::owns).
    fn mmio_read(&self, _vm: usize, _gpa: u64, _data: &mut [u8]) {}

    /// Stops the transport's backend threads; called once every vCPU thread has ended.
    fn stop(&self) {}

    /// Called once by VM `vm`'s vCPU thread when it starts.
    fn vcpu_started(&self, _vm: usize) {}

    /// Called once by VM `vm`'s vCPU thread when it leaves its loop, before it ends.
    fn vcpu_ended(&self, _vm: usize) {}

    /// Called by VM `vm`'s vCPU thread before every entry into the guest, with its vCPU
    /// (remap IPC pre-faults the landing extents queued for it).
    fn before_entry(&self, _vm: usize, _vcpu: &kvm_ioctls::VcpuFd) {}

    /// The guest errors of VM `vm` the transport logged (taken: a second call has none).
    fn take_guest_errors(&self, _vm: usize) -> GuestErrorLog {
        GuestErrorLog::default()
    }

    /// The end-of-run report (`transport` in the result).
    fn report(&self) -> Option<TransportReport> {
        None
    }
}

/// The transport of a run without one: the VMs share nothing.
#[derive(Debug)]
pub struct NoTransport;

impl TransportSetup for NoTransport {
    fn boot_kind(&self) -> u32 {
        TRANSPORT_NONE
    }

    fn start(self: Box<Self>, _run: &RunMemory<'_>) -> Result<Arc<dyn Transport>, StartError> {
        Ok(Arc::new(NoTransport))
    }
}

impl Transport for NoTransport {}
