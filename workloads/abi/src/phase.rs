//! The measured phase's own exits (`docs/abi.md`, "Measured phase and exit counts"): what a
//! reader of `stats.measured` subtracts to count only what the workload did. Conform's
//! expectations and bench's metrics both take them from here.

/// MMIO exits of one VM's measured phase that are the phase's own: the `PHASE` end write
/// (the begin write's exit falls before the first snapshot).
pub const PHASE_END_EXITS: u64 = 1;

/// MMIO exits of the start barrier inside a measured phase: the workloads' first receiver
/// begins its phase before the run barrier, so that every delivery into it falls inside.
pub const START_BARRIER_EXITS: u64 = 1;

/// Most MMIO exits of one workload VM's measured phase that are not the workload's own: its
/// `PHASE` end write, and the barrier write for the VM that begins before the barrier.
pub const WORKLOAD_VM_MAX_BOOKKEEPING_EXITS: u64 = PHASE_END_EXITS + START_BARRIER_EXITS;

/// MMIO exits, summed over the `vms` VMs of a workload run, that are the measured phases'
/// own: every VM's end write and the first receiver's start barrier.
pub const fn workload_bookkeeping_exits(vms: u64) -> u64 {
    bookkeeping_exits(vms, 1)
}

/// [`workload_bookkeeping_exits`] of a run in which `before_barrier` VMs begin their phases
/// before the start barrier (`chain`: every VM but VM0, `vms - 1`; the other workloads: 1).
pub const fn bookkeeping_exits(vms: u64, before_barrier: u64) -> u64 {
    vms * PHASE_END_EXITS + before_barrier * START_BARRIER_EXITS
}
