//! Remap IPC behind the transport seam: the run's page pool (remap), the IPC header page
//! read-only under the `exit-every-deferred-send` fault, the deferred drain before every
//! exit, the doorbell, the blocking `IPC_RECV_WAIT` read, and the report.

use std::sync::Arc;

use pageflip_abi::ipc::IPC_HEADER_GPA;
use pageflip_abi::{mmio, PAGE_SIZE, TRANSPORT_QUEUES};
use pageflip_interface::TransportReport;

use crate::control::StopFlag;
use crate::inject::{Fault, Injected};
use crate::ipc::prefault::PreFaulter;
use crate::ipc::{FrameTable, IpcEngine, Movement, PreFault};
use crate::memory::GuestRam;
use crate::transport::{RunMemory, StartError, Transport, TransportSetup};
use crate::vm::VmMemory;

/// Free pages in a remap run's pool beyond the VMs' memory (16 MiB: twice the largest
/// message). Each move takes fresh frames and frees as many of the receiver's, which come
/// back once the drain's moves are applied, so the pool never runs dry in steady state.
/// The memfd is sparse: pool pages cost memory only while a guest uses them (hugetlbfs:
/// they are reserved).
pub const POOL_PAGES: u32 = 2 * pageflip_abi::ipc::MAX_MSG_PAGES;

/// Remap or copy IPC before the VMs exist.
#[derive(Debug)]
pub struct IpcSetup {
    movement: Movement,
    injected: Injected,
    pre_fault: bool,
}

impl IpcSetup {
    /// Remap IPC moving data by `movement`, with what the command line injected.
    pub fn new(movement: Movement, injected: Injected) -> IpcSetup {
        IpcSetup {
            movement,
            injected,
            pre_fault: false,
        }
    }

    /// The same, pre-faulting landing extents after remaps if `pre_fault` (the run config's
    /// `pre_fault`).
    pub fn with_pre_fault(self, pre_fault: bool) -> IpcSetup {
        IpcSetup { pre_fault, ..self }
    }

    fn readonly_header(&self) -> bool {
        self.injected.fault == Some(Fault::ExitEveryDeferredSend)
    }
}

impl TransportSetup for IpcSetup {
    fn boot_kind(&self) -> u32 {
        TRANSPORT_QUEUES
    }

    fn pool_pages(&self) -> u32 {
        if self.movement.remaps() {
            POOL_PAGES
        } else {
            0
        }
    }

    fn huge_pages(&self) -> bool {
        self.movement == Movement::RemapHuge
    }

    fn vm_memory(&self, _vm: u32) -> VmMemory {
        VmMemory {
            readonly_page: self.readonly_header().then_some(IPC_HEADER_GPA),
            extra: None,
        }
    }

    fn start(self: Box<Self>, run: &RunMemory<'_>) -> Result<Arc<dyn Transport>, StartError> {
        let frames = self.movement.remaps().then(|| {
            let layout: Vec<(String, u64)> = run
                .vms
                .iter()
                .map(|v| v.name.clone())
                .zip(run.sizes.iter().copied())
                .collect();
            FrameTable::contiguous(&layout, self.pool_pages(), self.movement.align())
        });
        let rams: Vec<(String, Arc<GuestRam>)> = run
            .vms
            .iter()
            .map(|v| (v.name.clone(), v.ram.clone()))
            .collect();
        let guest_rams = rams.iter().map(|(_, ram)| ram.clone()).collect();
        let pre_fault = if !self.pre_fault || !self.movement.remaps() {
            PreFault::Off
        } else if run.vms.iter().all(|v| v.pre_fault_available()) {
            PreFault::On(Arc::new(PreFaulter::new(run.vms.len())))
        } else {
            PreFault::Unavailable
        };
        // The vCPU threads talk to the pre-faulter only when it is on: no lock on every
        // entry of a run that does not pre-fault.
        let prefaulter = match &pre_fault {
            PreFault::On(p) => Some(p.clone()),
            _ => None,
        };
        let engine = IpcEngine::new(
            self.movement,
            rams,
            frames,
            run.memfd.clone(),
            self.injected.fault,
        )
        .with_slowdown(self.injected.slowdown)
        .with_pre_fault(pre_fault);
        Ok(Arc::new(IpcTransport {
            prefaulter,
            readonly_header: self.readonly_header(),
            rams: guest_rams,
            engine,
        }))
    }
}

/// Remap or copy IPC during a run.
#[derive(Debug)]
pub struct IpcTransport {
    engine: IpcEngine,
    /// The engine's pre-faulter, if pre-faulting is on.
    prefaulter: Option<Arc<PreFaulter>>,
    readonly_header: bool,
    rams: Vec<Arc<GuestRam>>,
}

impl Transport for IpcTransport {
    fn has_queues(&self) -> bool {
        true
    }

    fn before_exit(&self, vm: usize) {
        self.engine.drain(vm);
    }

    fn vcpu_started(&self, vm: usize) {
        if let Some(p) = &self.prefaulter {
            p.register(vm);
        }
    }

    fn vcpu_ended(&self, vm: usize) {
        if let Some(p) = &self.prefaulter {
            p.unregister(vm);
        }
        self.engine.vm_ended(vm);
    }

    fn before_entry(&self, vm: usize, vcpu: &kvm_ioctls::VcpuFd) {
        if let Some(p) = &self.prefaulter {
            p.run(vm, vcpu);
        }
    }

    fn blocks(&self, offset: u64) -> bool {
        offset == mmio::IPC_RECV_WAIT
    }

    fn blocking_read(&self, vm: usize, _offset: u64, stop: &StopFlag) -> u64 {
        self.engine.recv_wait(vm, stop)
    }

    fn doorbell(&self, vm: usize, value: u64) -> bool {
        self.engine.doorbell(vm, value)
    }

    fn owns(&self, gpa: u64, write: bool) -> bool {
        // Reads of the read-only header page are served from memory and never exit.
        write && self.readonly_header && (IPC_HEADER_GPA..IPC_HEADER_GPA + PAGE_SIZE).contains(&gpa)
    }

    fn mmio_write(&self, vm: usize, gpa: u64, data: &[u8]) {
        // The read-only header fault: emulate the guest's store, then handle the exit like
        // any other (drain).
        self.rams[vm].write_bytes(gpa, data);
        self.engine.drain(vm);
    }

    fn report(&self) -> Option<TransportReport> {
        Some(self.engine.report())
    }
}
