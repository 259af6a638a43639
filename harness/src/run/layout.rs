//! What a run hands to a VMM build: the VMs of a [`Layout`] (turned into a `RunConfig` with
//! the paths of the guest images), or a raw config text ([`Input`]).

use pageflip_abi::probes::ipc_workloads as w;
use pageflip_interface::{RunConfig, TransportConfig, VmConfig, INTERFACE_VERSION};

use crate::run::images::{Image, ImageSet};

/// Placeholder in a raw config text; the driver replaces it with the JSON string of the
/// `hello` image's path.
pub const HELLO_PLACEHOLDER: &str = "\"@hello@\"";

/// VMM watchdog of a case that does not need another.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// VMM watchdog of a benchmark run.
pub const BENCHMARK_TIMEOUT_MS: u64 = 600_000;

/// What a run hands to the VMM.
#[derive(Clone, Debug)]
pub enum Input {
    /// A well-formed run config.
    Run(Layout),
    /// Config text as is; [`HELLO_PLACEHOLDER`] is replaced by the `hello` image's path.
    Raw(String),
}

impl Input {
    /// Huge pages of 2 MiB this input's run needs free (`remap-huge` runs; else 0).
    pub fn huge_pages(&self) -> u64 {
        match self {
            Input::Run(l) if l.transport == TransportConfig::RemapHuge => {
                let mib: Vec<u64> = l.vms.iter().map(|v| v.memory_mib).collect();
                crate::run::hugepages::pages_for_run(&mib)
            }
            _ => 0,
        }
    }

    /// The images the VMs of this input boot.
    pub fn images(&self) -> Vec<Image> {
        match self {
            Input::Run(layout) => layout.vms.iter().map(|vm| vm.image).collect(),
            Input::Raw(text) if text.contains(HELLO_PLACEHOLDER) => {
                vec![Image::Guest(pageflip_workloads::HELLO)]
            }
            Input::Raw(_) => Vec::new(),
        }
    }
}

/// The VMs of a run and its settings.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The VMs, in id order.
    pub vms: Vec<VmSpec>,
    /// The VMM's watchdog.
    pub timeout_ms: u64,
    /// Stop the other VMs when one fails.
    pub stop_on_failure: bool,
    /// The transport between the VMs.
    pub transport: TransportConfig,
    /// Pin VM i's vCPU thread to host CPU i mod the online CPUs (`VmConfig::cpu`).
    pub pin_vcpus: bool,
}

/// One VM of a [`Layout`].
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// Its guest image.
    pub image: Image,
    /// Its memory in MiB.
    pub memory_mib: u64,
    /// Its params.
    pub params: Vec<u64>,
}

impl VmSpec {
    /// A VM of `memory_mib` MiB booting `image` with `params`.
    pub fn new(image: Image, memory_mib: u64, params: &[u64]) -> VmSpec {
        VmSpec {
            image,
            memory_mib,
            params: params.to_vec(),
        }
    }

    /// A VM booting the embedded guest `name`.
    pub fn guest(name: &'static str, memory_mib: u64, params: &[u64]) -> VmSpec {
        VmSpec::new(Image::Guest(name), memory_mib, params)
    }
}

impl Layout {
    /// A layout with the default watchdog that stops on failure.
    pub fn of(vms: Vec<VmSpec>) -> Layout {
        Layout {
            vms,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            stop_on_failure: true,
            transport: TransportConfig::None,
            pin_vcpus: false,
        }
    }

    /// A benchmark run: `vms` VMs booting the embedded guest `image` with `params`, over
    /// `transport`, with a watchdog long enough for any benchmark.
    pub fn benchmark(
        transport: TransportConfig,
        image: &'static str,
        params: &[u64],
        vms: usize,
    ) -> Layout {
        Layout {
            timeout_ms: BENCHMARK_TIMEOUT_MS,
            ..Layout::of(
                (0..vms)
                    .map(|_| VmSpec::guest(image, w::MIN_MEMORY_MIB, params))
                    .collect(),
            )
            .with_transport(transport)
        }
    }

    /// The same layout with `transport`.
    pub fn with_transport(self, transport: TransportConfig) -> Layout {
        Layout { transport, ..self }
    }

    /// The run config for this layout, with image paths from `images`.
    pub fn config(&self, images: &ImageSet) -> RunConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        RunConfig {
            version: INTERFACE_VERSION,
            vms: self
                .vms
                .iter()
                .enumerate()
                .map(|(i, vm)| VmConfig {
                    name: None,
                    image: images.path(vm.image),
                    memory_mib: vm.memory_mib,
                    params: vm.params.clone(),
                    cpu: self.pin_vcpus.then_some(i % cpus),
                })
                .collect(),
            transport: self.transport.clone(),
            timeout_ms: self.timeout_ms,
            stop_on_failure: self.stop_on_failure,
        }
    }
}
