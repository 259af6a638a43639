//! The one place that turns a run config's `TransportConfig` into a transport.

use pageflip_interface::TransportConfig;

use crate::inject::Injected;
use crate::ipc::transport::IpcSetup;
use crate::ipc::Movement;
use crate::shmem::ShmemSetup;
use crate::transport::{NoTransport, TransportSetup};
use crate::virtio::transport::VirtioSetup;
use crate::vm::VmSetupError;

/// The transport `config` asks for, with what the command line injected, for a run of
/// `num_vms` VMs: the one place that matches on `TransportConfig`.
pub fn from_config(
    config: &TransportConfig,
    num_vms: u32,
    injected: Injected,
) -> Result<Box<dyn TransportSetup>, VmSetupError> {
    Ok(match config {
        TransportConfig::None => Box::new(NoTransport),
        TransportConfig::Remap => Box::new(IpcSetup::new(Movement::Remap, injected)),
        TransportConfig::RemapPerPage => Box::new(IpcSetup::new(Movement::RemapPerPage, injected)),
        TransportConfig::RemapHuge => Box::new(IpcSetup::new(Movement::RemapHuge, injected)),
        TransportConfig::Copy => Box::new(IpcSetup::new(Movement::Copy, injected)),
        TransportConfig::Virtio { notify } => {
            Box::new(VirtioSetup::new(config.name(), *notify, injected))
        }
        TransportConfig::Shmem => Box::new(ShmemSetup::create(num_vms, injected)?),
    })
}
