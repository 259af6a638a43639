//! Helpers shared by the reference VMM's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pageflip_interface::{RunConfig, TransportConfig, VmConfig, INTERFACE_VERSION};

/// Writes the embedded guest image `name` into `dir` and returns its path.
pub fn guest(dir: &Path, name: &str) -> PathBuf {
    let bytes = pageflip_workloads::image(name).unwrap_or_else(|| panic!("no guest image {name}"));
    let path = dir.join(format!("{name}.elf"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A config running `images` (with their memory in MiB) for at most `timeout_ms`.
pub fn config(vms: &[(PathBuf, u64, Vec<u64>)], timeout_ms: u64) -> RunConfig {
    RunConfig {
        version: INTERFACE_VERSION,
        vms: vms
            .iter()
            .map(|(image, memory_mib, params)| VmConfig {
                name: None,
                image: image.clone(),
                memory_mib: *memory_mib,
                params: params.clone(),
                cpu: None,
            })
            .collect(),
        transport: TransportConfig::None,
        timeout_ms,
        stop_on_failure: true,
        pre_fault: false,
    }
}
