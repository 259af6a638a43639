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
/// `num_vms` VMs (remap variants pre-fault landing extents if `pre_fault`): the one place
/// that matches on `TransportConfig`.
pub fn from_config(
    config: &TransportConfig,
    num_vms: u32,
    injected: Injected,
    pre_fault: bool,
) -> Result<Box<dyn TransportSetup>, VmSetupError> {
    let ipc = |movement| Box::new(IpcSetup::new(movement, injected).with_pre_fault(pre_fault));
    Ok(match config {
        TransportConfig::None => Box::new(NoTransport),
        TransportConfig::Remap => ipc(Movement::Remap),
        TransportConfig::RemapPerPage => ipc(Movement::RemapPerPage),
        TransportConfig::RemapHuge => ipc(Movement::RemapHuge),
        TransportConfig::Copy => ipc(Movement::Copy),
        TransportConfig::Virtio { notify } => {
            Box::new(VirtioSetup::new(config.name(), *notify, injected))
        }
        TransportConfig::Shmem => Box::new(ShmemSetup::create(num_vms, injected)?),
    })
}
