//! The host's one byte codec for the ABI structures: vm-memory's `ByteValued` (feature
//! `vm-memory`), so that the VMM reads and writes them in guest memory with
//! `Bytes::read_obj` / `write_obj` and encodes them with `ByteValued::as_slice`. The guests,
//! built without the feature, use the structures in place.
//!
//! Every structure here is `#[repr(C)]`, holds only integers (or arrays of them) and has no
//! padding — its size is asserted against the sum of its fields where it is defined — so every
//! byte pattern is a valid value, which is what `ByteValued` requires.

use vm_memory::ByteValued;

use crate::ipc::{Extent, IpcHeader, PostEntry, RecvEntry, SendDesc};
use crate::records::{BootInfo, ResultRecord, SampleDesc};
use crate::shmem::RingControl;
use crate::virtio::DgramHeader;

// SAFETY: repr(C), integer fields only, no padding (size asserted in `ipc`).
unsafe impl ByteValued for IpcHeader {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `ipc`).
unsafe impl ByteValued for SendDesc {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `ipc`).
unsafe impl ByteValued for Extent {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `ipc`).
unsafe impl ByteValued for PostEntry {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `ipc`).
unsafe impl ByteValued for RecvEntry {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `records`).
unsafe impl ByteValued for BootInfo {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `records`).
unsafe impl ByteValued for ResultRecord {}
// SAFETY: repr(C), two u64 fields.
unsafe impl ByteValued for SampleDesc {}
// SAFETY: repr(C), u64 fields only, no padding (size asserted in `shmem`).
unsafe impl ByteValued for RingControl {}
// SAFETY: repr(C), integer fields only, no padding (size asserted in `virtio`).
unsafe impl ByteValued for DgramHeader {}
