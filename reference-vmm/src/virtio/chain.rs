//! The device's own walk of a descriptor chain, before virtio-queue's `Reader` and `Writer`
//! move any byte: it reads every descriptor of the chain (the driver's flags as written,
//! indirect descriptors not followed) and checks each against what a guest may hand the
//! device (`docs/abi.md`, "Bad input"), so that a refused chain is refused for the reason
//! that is true, and the log line says it.
//!
//! The walk decides; it does not protect. The device's memory view (`VirtioDevice::view`)
//! holds only the guest's own memory, `[IMAGE_BASE, mem_size)`, so that even a descriptor
//! the guest changes after this walk cannot make `Reader` or `Writer` reach below it.

use pageflip_abi::virtio::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use pageflip_abi::IMAGE_BASE;
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// Size of a split-queue descriptor in the table.
const DESC_SIZE: u64 = 16;

/// Why a buffer the driver names (a descriptor or a ring) is not the guest's to hand over.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// `addr + len` does not fit in 64 bits.
    #[error("address {addr:#x} + length {len:#x} overflows")]
    Overflow {
        /// Start.
        addr: u64,
        /// Length.
        len: u64,
    },
    /// The buffer reaches past the end of guest memory.
    #[error("{addr:#x}..{end:#x} reaches past guest memory (its size is {mem_size:#x})")]
    OutsideMemory {
        /// Start.
        addr: u64,
        /// End (exclusive).
        end: u64,
        /// The VM's memory size.
        mem_size: u64,
    },
    /// The buffer reaches into the VMM's reserved range below `IMAGE_BASE`.
    #[error(
        "{addr:#x}..{end:#x} reaches into the VMM's reserved range below {IMAGE_BASE:#x} (GDT, page tables, boot info, control structures, stack), which is not the guest's to hand the device"
    )]
    Reserved {
        /// Start.
        addr: u64,
        /// End (exclusive).
        end: u64,
    },
}

/// Checks that `[addr, addr + len)` lies in the guest's own memory `[IMAGE_BASE,
/// mem_size)`, in this order: overflow, past the end, below `IMAGE_BASE`. An empty range is
/// accepted wherever it points: it reaches no byte.
pub fn check_range(mem_size: u64, addr: u64, len: u64) -> Result<(), RangeError> {
    if len == 0 {
        return Ok(());
    }
    let end = addr
        .checked_add(len)
        .ok_or(RangeError::Overflow { addr, len })?;
    if end > mem_size {
        return Err(RangeError::OutsideMemory {
            addr,
            end,
            mem_size,
        });
    }
    if addr < IMAGE_BASE {
        return Err(RangeError::Reserved { addr, end });
    }
    Ok(())
}

/// A chain the device cannot walk: the queue is broken (DEVICE_NEEDS_RESET).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Broken {
    /// A descriptor index (the head, or a `next`) is not below the queue size.
    #[error("descriptor index {index} (the {what}) is outside the table of {size}")]
    Index {
        /// The index.
        index: u16,
        /// `head`, or `next of descriptor N`.
        what: String,
        /// The queue size.
        size: u16,
    },
    /// More descriptors than the queue size: the chain loops.
    #[error("the chain at descriptor {head} does not end within the queue size {size} (a loop)")]
    Loop {
        /// The head.
        head: u16,
        /// The queue size.
        size: u16,
    },
    /// A descriptor could not be read (the table is not in the device's view).
    #[error("descriptor {index} cannot be read at {gpa:#x}")]
    Unreadable {
        /// The index.
        index: u16,
        /// Its GPA.
        gpa: u64,
    },
}

/// Why the device refuses a chain it could walk (status bad-chain).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A descriptor with `VIRTQ_DESC_F_INDIRECT`: the device does not offer
    /// `VIRTIO_F_INDIRECT_DESC`, so it never reads an indirect table.
    #[error("descriptor {index} has VIRTQ_DESC_F_INDIRECT, but VIRTIO_F_INDIRECT_DESC is not offered nor negotiated")]
    Indirect {
        /// The descriptor.
        index: u16,
    },
    /// The chain's lengths add up to more than `u32::MAX` bytes (virtio 1.2, 2.7.5.2).
    #[error("the chain is longer than 2^32 - 1 bytes at descriptor {index} (length {len:#x})")]
    TooLong {
        /// The descriptor where the total overflows.
        index: u16,
        /// Its length.
        len: u32,
    },
    /// A descriptor's buffer is not the guest's memory.
    #[error("descriptor {index}: {error}")]
    Range {
        /// The descriptor.
        index: u16,
        /// How.
        error: RangeError,
    },
    /// A device-readable descriptor after a device-writable one (2.7.4.2).
    #[error("descriptor {index} is device-readable after a device-writable one")]
    Misordered {
        /// The descriptor.
        index: u16,
    },
}

/// A chain the device walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    /// The head.
    pub head: u16,
    /// Descriptors in the chain.
    pub descriptors: usize,
    /// Device-readable descriptors (not indirect).
    pub readable: usize,
    /// The device-writable descriptors (not indirect), as (address, length), in order.
    pub writable: Vec<(u64, u32)>,
    /// Whether every device-writable descriptor passed the range check (the device may write
    /// into all of them).
    pub writable_ok: bool,
    /// The first refused descriptor, in chain order, if any (indirect, too long, range;
    /// then the order of readable and writable ones).
    pub refusal: Option<Refusal>,
}

/// Walks the chain with head `head` of the queue whose descriptor table is at `table` with
/// `size` entries, in `mem` (the device's view), for a VM of `mem_size` bytes. Each
/// descriptor is checked in this order: `VIRTQ_DESC_F_INDIRECT` (then its buffer is not
/// looked at), the chain's running length, then its buffer ([`check_range`]); after the
/// walk, a readable descriptor after a writable one. `accept_indirect` (the
/// `accept-indirect` fault) ignores the INDIRECT flag.
pub fn walk<M: GuestMemory>(
    mem: &M,
    table: u64,
    size: u16,
    head: u16,
    mem_size: u64,
    accept_indirect: bool,
) -> Result<Walked, Broken> {
    let mut w = Walked {
        head,
        descriptors: 0,
        readable: 0,
        writable: Vec::new(),
        writable_ok: true,
        refusal: None,
    };
    let mut total: u32 = 0;
    let mut misordered = None;
    let mut seen_writable = false;
    let mut index = head;
    let mut what = "head".to_string();
    loop {
        if index >= size {
            return Err(Broken::Index { index, what, size });
        }
        if w.descriptors == usize::from(size) {
            return Err(Broken::Loop { head, size });
        }
        let gpa = table + u64::from(index) * DESC_SIZE;
        let d: Descriptor = mem
            .read_obj(GuestAddress(gpa))
            .map_err(|_| Broken::Unreadable { index, gpa })?;
        w.descriptors += 1;
        let flags = if accept_indirect {
            d.flags() & !VIRTQ_DESC_F_INDIRECT
        } else {
            d.flags()
        };
        let writable = flags & VIRTQ_DESC_F_WRITE != 0;
        let refusal = if flags & VIRTQ_DESC_F_INDIRECT != 0 {
            // Neither readable nor writable: the device never uses its buffer.
            Some(Refusal::Indirect { index })
        } else {
            let range = check_range(mem_size, d.addr().0, u64::from(d.len()));
            if writable {
                seen_writable = true;
                w.writable.push((d.addr().0, d.len()));
                // Only the descriptor's own buffer decides whether the device may write it.
                w.writable_ok &= range.is_ok();
            } else {
                w.readable += 1;
                if seen_writable && misordered.is_none() {
                    misordered = Some(Refusal::Misordered { index });
                }
            }
            match total.checked_add(d.len()) {
                None => Some(Refusal::TooLong {
                    index,
                    len: d.len(),
                }),
                Some(t) => {
                    total = t;
                    range.err().map(|error| Refusal::Range { index, error })
                }
            }
        };
        if w.refusal.is_none() {
            w.refusal = refusal;
        }
        if flags & VIRTQ_DESC_F_NEXT == 0 {
            break;
        }
        what = format!("next of descriptor {index}");
        index = d.next();
    }
    if w.refusal.is_none() {
        w.refusal = misordered;
    }
    Ok(w)
}

impl Walked {
    /// Device-writable bytes, summed over the writable descriptors.
    pub fn writable_bytes(&self) -> u64 {
        self.writable.iter().map(|&(_, len)| u64::from(len)).sum()
    }

    /// Writes `bytes` at the start of the chain's device-writable descriptors (spread over
    /// them in order), in `mem`, the device's view; false, and nothing written, unless every
    /// writable descriptor is in the guest's memory and together they hold `bytes`. This
    /// uses the descriptors as walked, never the guest's table again.
    pub fn write_start<M: GuestMemory>(&self, mem: &M, bytes: &[u8]) -> bool {
        if !self.writable_ok || self.writable_bytes() < bytes.len() as u64 {
            return false;
        }
        let mut rest = bytes;
        for &(addr, len) in &self.writable {
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(len as usize);
            if mem.write_slice(&rest[..n], GuestAddress(addr)).is_err() {
                return false;
            }
            rest = &rest[n..];
        }
        true
    }
}
