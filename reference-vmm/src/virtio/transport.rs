//! The virtio datagram device behind the transport seam: a device per VM in its register
//! window, the ioeventfd backend thread in `ioeventfd` mode, the report and the devices'
//! guest errors.

use std::sync::{Arc, Mutex};

use crate::guest_errors::GuestErrorLog;
use pageflip_abi::virtio::VIRTIO_MMIO_GPA;
use pageflip_abi::TRANSPORT_VIRTIO;
use pageflip_interface::{NotifyMode, TransportReport};

use crate::inject::Injected;
use crate::transport::{RunMemory, StartError, Transport, TransportSetup};
use crate::virtio::backend::{BackendError, IoeventBackend};
use crate::virtio::VirtioHub;

/// The virtio transport before the VMs exist.
#[derive(Debug)]
pub struct VirtioSetup {
    kind: String,
    notify: NotifyMode,
    injected: Injected,
}

impl VirtioSetup {
    /// Virtio devices notified as `notify` says, reported as transport `kind`.
    pub fn new(kind: String, notify: NotifyMode, injected: Injected) -> VirtioSetup {
        VirtioSetup {
            kind,
            notify,
            injected,
        }
    }
}

impl TransportSetup for VirtioSetup {
    fn boot_kind(&self) -> u32 {
        TRANSPORT_VIRTIO
    }

    fn start(self: Box<Self>, run: &RunMemory<'_>) -> Result<Arc<dyn Transport>, StartError> {
        let hub = Arc::new(
            VirtioHub::new(
                run.vms
                    .iter()
                    .map(|v| (v.name.clone(), v.ram.clone()))
                    .collect(),
                self.notify,
                self.injected.fault,
            )
            .map_err(|e| StartError::Backend(format!("mapping the devices' memory: {e}")))?
            .with_slowdown(self.injected.slowdown),
        );
        let backend = match self.notify {
            NotifyMode::Ioeventfd => Some(
                IoeventBackend::start(hub.clone(), run.vms, run.confinement).map_err(
                    |e| match e {
                        BackendError::Register { vm, source } => StartError::Setup { vm, source },
                        e => StartError::Backend(e.to_string()),
                    },
                )?,
            ),
            NotifyMode::Userspace => None,
        };
        Ok(Arc::new(VirtioTransport {
            kind: self.kind,
            hub,
            backend: Mutex::new(backend),
        }))
    }
}

/// The virtio transport during a run.
#[derive(Debug)]
pub struct VirtioTransport {
    kind: String,
    hub: Arc<VirtioHub>,
    backend: Mutex<Option<IoeventBackend>>,
}

impl Transport for VirtioTransport {
    fn owns(&self, gpa: u64, _write: bool) -> bool {
        VirtioHub::contains(gpa)
    }

    fn mmio_write(&self, vm: usize, gpa: u64, data: &[u8]) {
        self.hub.mmio_write(vm, gpa - VIRTIO_MMIO_GPA, data);
    }

    fn mmio_read(&self, vm: usize, gpa: u64, data: &mut [u8]) {
        self.hub.mmio_read(vm, gpa - VIRTIO_MMIO_GPA, data);
    }

    fn stop(&self) {
        let backend = self
            .backend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(b) = backend {
            b.stop();
        }
    }

    fn take_guest_errors(&self, vm: usize) -> GuestErrorLog {
        self.hub.take_guest_errors(vm)
    }

    fn report(&self) -> Option<TransportReport> {
        Some(self.hub.report(self.kind.clone()))
    }
}
