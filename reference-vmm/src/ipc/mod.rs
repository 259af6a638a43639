//! Remap IPC (`docs/remap-ipc.md`): queues and control structures shared with the guests,
//! page ownership, remap and copy data movement, injected faults for mutation testing.

pub mod engine;
pub mod faults;
pub mod frames;

pub use engine::{IpcEngine, Movement};
pub use faults::{Fault, ALL_FAULTS};
pub use frames::FrameTable;
