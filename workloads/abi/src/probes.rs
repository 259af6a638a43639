//! What the conformance probes report, where host and guest must agree on it.

/// Layout of the samples the `hello` guest reports: its boot info, flattened.
pub mod hello {
    use crate::{MAX_PARAMS, MAX_VMS};

    /// Sample index of the VM id.
    pub const VM_ID: usize = 0;
    /// Sample index of the number of VMs.
    pub const NUM_VMS: usize = 1;
    /// Sample index of the memory size.
    pub const MEM_SIZE: usize = 2;
    /// Sample index of the number of peers.
    pub const NUM_PEERS: usize = 3;
    /// Sample index of the first of [`MAX_VMS`] peer ids (unused entries are `u64::MAX`).
    pub const PEER_IDS: usize = 4;
    /// Sample index of the number of params.
    pub const NUM_PARAMS: usize = PEER_IDS + MAX_VMS;
    /// Sample index of the first of [`MAX_PARAMS`] params (unused entries are 0).
    pub const PARAMS: usize = NUM_PARAMS + 1;
    /// Sample index of the TSC frequency in kHz.
    pub const TSC_KHZ: usize = PARAMS + MAX_PARAMS;
    /// Sample index of `free_start`.
    pub const FREE_START: usize = TSC_KHZ + 1;
    /// Number of samples.
    pub const COUNT: usize = FREE_START + 1;
}

/// Parameters of the `fault` guest.
pub mod fault {
    /// `params[0]`: write to the unmapped null page (#PF, no IDT: the VM shuts down).
    pub const NULL_WRITE: u64 = 0;
    /// `params[0]`: execute `ud2` (#UD, the VM shuts down).
    pub const INVALID_OPCODE: u64 = 1;
    /// `params[0]`: read the GPA `mem_size + 0x1000`, owned by no device.
    pub const UNOWNED_READ: u64 = 2;
    /// Offset above `mem_size` that [`UNOWNED_READ`] reads.
    pub const UNOWNED_OFFSET: u64 = 0x1000;
}

/// The `isolation` guest.
pub mod isolation {
    /// Bytes of its memory each VM fills with its secret, from `free_start`.
    pub const FILL_BYTES: u64 = 2 << 20;
    /// The 64-bit secret VM `id` writes; no other VM's memory may ever show it.
    pub const fn secret(id: u32) -> u64 {
        0x5ec2_e700_0000_0000 | ((id as u64 + 1) * 0x0001_0001_0001)
    }
    /// `params[0]` = 1: after the scans, read `mem_size + 0x1000` (must stop the VM).
    pub const PROBE_BEYOND: u64 = 1;
}

/// The `doorbell` guest: `params[0]` = K doorbell writes inside the measured phase.
pub mod doorbell {
    /// Doorbell writes the guest makes before the measured phase, to warm up.
    pub const WARMUP: u64 = 1;
}
