//! The run config: which VMs to start, with which guest images, memory and parameters.

use std::path::PathBuf;

use pageflip_abi::{MAX_MEM_SIZE, MAX_PARAMS, MAX_VMS, MEM_ALIGN, MIN_MEM_SIZE};
use serde::{Deserialize, Serialize};

use crate::INTERFACE_VERSION;

/// Longest watchdog timeout a config may ask for (one hour).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// One run of one or more VMs (version 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Must be [`INTERFACE_VERSION`].
    pub version: u32,
    /// The VMs, 1 to [`MAX_VMS`]; a VM's id is its index here.
    pub vms: Vec<VmConfig>,
    /// How the VMs exchange messages.
    #[serde(default)]
    pub transport: TransportConfig,
    /// Watchdog: the run is stopped after this many milliseconds.
    pub timeout_ms: u64,
    /// Stop every other VM as soon as one VM fails (dies, or exits non-zero).
    #[serde(default = "default_true")]
    pub stop_on_failure: bool,
    /// Remap variants: after each remap, pre-fault the receiver's landing extents with
    /// `KVM_PRE_FAULT_MEMORY`. Where the host lacks it the run goes on without, and the
    /// result's `transport.pre_fault` says "unavailable".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_fault: bool,
}

fn default_true() -> bool {
    true
}

/// One VM of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    /// A name for logs and results (default: `vm<id>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Path of the guest's x86-64 ELF image (static, linked at or above 0x200000).
    pub image: PathBuf,
    /// Guest memory in MiB: a multiple of 2, from 4 to 3072.
    pub memory_mib: u64,
    /// Run parameters handed to the guest in its boot info (at most 16).
    #[serde(default)]
    pub params: Vec<u64>,
    /// Host CPU to pin this VM's vCPU thread to.
    #[serde(default)]
    pub cpu: Option<usize>,
}

/// The transport between the VMs of a run, with its parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransportConfig {
    /// No transport: the VMs share nothing.
    #[default]
    None,
    /// Remap IPC (`docs/remap-ipc.md`), moving data by remapping pages: a sent page leaves
    /// the sender's address space (which gets a fresh zeroed page) and appears in the
    /// receiver's at a page it posted. Extents move as whole host mappings, and adjacent
    /// moves of one drain coalesce into one host operation.
    Remap,
    /// Remap IPC moving every page with its own host operations (two `mmap`s and one
    /// `fallocate` per page, no coalescing): page flipping as Xen's netback did it, the
    /// baseline that `remap` is measured against.
    RemapPerPage,
    /// Remap IPC over 2 MiB huge pages: guest memory and the pool live in a hugetlbfs memfd,
    /// and every extent moves as whole huge pages (extents must be 2 MiB-aligned multiples
    /// of 2 MiB). Needs reserved huge pages (`/proc/sys/vm/nr_hugepages`).
    RemapHuge,
    /// Remap IPC's queues, moving data by copying: the VMM copies the message into pages the
    /// receiver posted; no mapping changes.
    Copy,
    /// The virtio datagram device (`docs/abi.md`): a virtio-mmio device per VM with a tx and
    /// an rx queue; the VMM copies each buffer from the sender's tx queue into the receiver's
    /// rx queue.
    Virtio {
        /// How QueueNotify writes reach the device.
        #[serde(default)]
        notify: NotifyMode,
    },
    /// One shared region mapped into every VM, a polled ring per pair of VMs: no exits, no
    /// isolation (`docs/abi.md`).
    Shmem,
}

/// How a virtio driver's notifications (QueueNotify writes) reach the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyMode {
    /// An ioeventfd registered with KVM: the write is handled in the kernel, which signals an
    /// eventfd that a VMM backend thread waits on (no exit to userspace).
    #[default]
    Ioeventfd,
    /// A userspace MMIO exit, handled on the vCPU thread before the guest resumes.
    Userspace,
}

impl NotifyMode {
    /// Its name in configs and results.
    pub fn name(self) -> &'static str {
        match self {
            NotifyMode::Ioeventfd => "ioeventfd",
            NotifyMode::Userspace => "userspace",
        }
    }
}

impl TransportConfig {
    /// Every transport that moves messages, in the order benchmarks list them: a transport
    /// added here appears in every benchmark profile (`bench run`) without other changes.
    pub fn catalog() -> Vec<TransportConfig> {
        vec![
            TransportConfig::Remap,
            TransportConfig::RemapPerPage,
            TransportConfig::RemapHuge,
            TransportConfig::Copy,
            TransportConfig::Virtio {
                notify: NotifyMode::Ioeventfd,
            },
            TransportConfig::Virtio {
                notify: NotifyMode::Userspace,
            },
            TransportConfig::Shmem,
        ]
    }

    /// Whether the run has remap-IPC queues (a remap variant, or copy).
    pub fn has_ipc(&self) -> bool {
        self.remaps() || *self == TransportConfig::Copy
    }

    /// Whether the run moves pages by remapping them (`remap`, `remap-per-page`,
    /// `remap-huge`): it has a page pool and an ownership audit.
    pub fn remaps(&self) -> bool {
        matches!(
            self,
            TransportConfig::Remap | TransportConfig::RemapPerPage | TransportConfig::RemapHuge
        )
    }

    /// The transport's name in results and reports: `none`, `remap`, `remap-per-page`,
    /// `remap-huge`, `copy`, `virtio-ioeventfd`, `virtio-userspace` or `shmem`.
    pub fn name(&self) -> String {
        match self {
            TransportConfig::None => "none".into(),
            TransportConfig::Remap => "remap".into(),
            TransportConfig::RemapPerPage => "remap-per-page".into(),
            TransportConfig::RemapHuge => "remap-huge".into(),
            TransportConfig::Copy => "copy".into(),
            TransportConfig::Virtio { notify } => format!("virtio-{}", notify.name()),
            TransportConfig::Shmem => "shmem".into(),
        }
    }
}

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or not of the documented shape (unknown fields included).
    #[error("not a valid run config: {0}")]
    Json(#[source] serde_json::Error),
    /// No `version` field.
    #[error("the config has no \"version\" field (this VMM reads version {INTERFACE_VERSION})")]
    NoVersion,
    /// A version this code does not speak.
    #[error(
        "config version {found} is not supported (this VMM reads version {INTERFACE_VERSION})"
    )]
    Version {
        /// The version the document gives.
        found: u64,
    },
    /// Fewer than one or more than [`MAX_VMS`] VMs.
    #[error("the config has {0} VMs; a run has 1 to {MAX_VMS}")]
    VmCount(usize),
    /// A memory size out of range or not a multiple of 2 MiB.
    #[error("vms[{vm}].memory_mib = {mib}: must be a multiple of 2 from 4 to 3072")]
    Memory {
        /// Index of the VM.
        vm: usize,
        /// The size asked for.
        mib: u64,
    },
    /// Too many params.
    #[error("vms[{vm}].params has {count} entries; at most {MAX_PARAMS}")]
    Params {
        /// Index of the VM.
        vm: usize,
        /// Number given.
        count: usize,
    },
    /// A VM name that is empty, too long, or has control characters.
    #[error("vms[{vm}].name {name:?}: names are 1 to 64 printable characters")]
    Name {
        /// Index of the VM.
        vm: usize,
        /// The name given.
        name: String,
    },
    /// A zero or too long timeout.
    #[error("timeout_ms = {0}: must be from 1 to {MAX_TIMEOUT_MS}")]
    Timeout(u64),
}

impl RunConfig {
    /// Parses and validates a config document.
    pub fn from_json(text: &str) -> Result<RunConfig, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(ConfigError::Json)?;
        let version = value.get("version").ok_or(ConfigError::NoVersion)?;
        match version.as_u64() {
            Some(v) if v == u64::from(INTERFACE_VERSION) => {}
            Some(v) => return Err(ConfigError::Version { found: v }),
            None => return Err(ConfigError::NoVersion),
        }
        let config: RunConfig = serde_json::from_value(value).map_err(ConfigError::Json)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the limits that the JSON shape alone does not express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vms.is_empty() || self.vms.len() > MAX_VMS {
            return Err(ConfigError::VmCount(self.vms.len()));
        }
        for (i, vm) in self.vms.iter().enumerate() {
            let bytes = vm.memory_mib.checked_mul(1 << 20);
            let ok = bytes
                .is_some_and(|b| (MIN_MEM_SIZE..=MAX_MEM_SIZE).contains(&b) && b % MEM_ALIGN == 0);
            if !ok {
                return Err(ConfigError::Memory {
                    vm: i,
                    mib: vm.memory_mib,
                });
            }
            if let Some(name) = &vm.name {
                if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                    return Err(ConfigError::Name {
                        vm: i,
                        name: name.clone(),
                    });
                }
            }
            if vm.params.len() > MAX_PARAMS {
                return Err(ConfigError::Params {
                    vm: i,
                    count: vm.params.len(),
                });
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::Timeout(self.timeout_ms));
        }
        Ok(())
    }

    /// The name of VM `id`: its configured name or `vm<id>`.
    pub fn vm_name(&self, id: usize) -> String {
        self.vms[id]
            .name
            .clone()
            .unwrap_or_else(|| format!("vm{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> String {
        r#"{"version":1,"timeout_ms":1000,"vms":[{"image":"a.elf","memory_mib":64}]}"#.into()
    }

    #[test]
    fn accepts_a_minimal_config() {
        let c = RunConfig::from_json(&good()).unwrap();
        assert_eq!(c.vms[0].memory_mib, 64);
        assert_eq!(c.transport, TransportConfig::None);
        assert!(c.stop_on_failure);
        assert_eq!(c.vm_name(0), "vm0");
    }

    #[test]
    fn rejects_unknown_version_and_fields() {
        let v2 = good().replace("\"version\":1", "\"version\":2");
        assert!(matches!(
            RunConfig::from_json(&v2),
            Err(ConfigError::Version { found: 2 })
        ));
        let extra = good().replace("\"memory_mib\":64", "\"memory_mib\":64,\"colour\":1");
        let err = RunConfig::from_json(&extra).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let noversion = good().replace("\"version\":1,", "");
        assert!(matches!(
            RunConfig::from_json(&noversion),
            Err(ConfigError::NoVersion)
        ));
        let transport = good().replace("\"vms\"", "\"transport\":{\"kind\":\"pigeon\"},\"vms\"");
        assert!(RunConfig::from_json(&transport).is_err());
    }

    #[test]
    fn rejects_bad_limits() {
        for mib in [0, 2, 5, 3074, u64::MAX] {
            let t = good().replace("64", &mib.to_string());
            assert!(
                matches!(RunConfig::from_json(&t), Err(ConfigError::Memory { .. })),
                "{mib}"
            );
        }
        let none = good().replace(r#"{"image":"a.elf","memory_mib":64}"#, "");
        assert!(matches!(
            RunConfig::from_json(&none),
            Err(ConfigError::VmCount(0))
        ));
        let nul = good().replace("\"memory_mib\"", "\"name\":\"a\\u0000b\",\"memory_mib\"");
        assert!(matches!(
            RunConfig::from_json(&nul),
            Err(ConfigError::Name { .. })
        ));
        let zero = good().replace("1000", "0");
        assert!(matches!(
            RunConfig::from_json(&zero),
            Err(ConfigError::Timeout(0))
        ));
        let params = good().replace(
            "\"memory_mib\":64",
            &format!("\"memory_mib\":64,\"params\":{:?}", [1u64; 17]),
        );
        assert!(matches!(
            RunConfig::from_json(&params),
            Err(ConfigError::Params { count: 17, .. })
        ));
    }
}
