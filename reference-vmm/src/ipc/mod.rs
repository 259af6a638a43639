//! Remap IPC (`docs/remap-ipc.md`): queues and control structures shared with the guests,
//! page ownership, remap and copy data movement.

pub mod checks;
pub mod engine;
pub mod frames;
pub mod host_ops;
pub mod transport;

pub use engine::{IpcEngine, Movement};
pub use frames::FrameTable;
