//! The host side of remap moves: the `mmap(MAP_FIXED)` and `fallocate(PUNCH_HOLE)` calls that
//! a drain's planned [`Move`]s need, collected in a [`HostOps`] batch and applied at once.
//!
//! With coalescing on (`remap`, `remap-huge`), a mapping that continues the previous one of
//! the same VM (GPA and frame both adjacent) and a freed run that continues the previous one
//! extend it instead of adding an operation, so consecutive descriptors of one drain whose
//! pages are adjacent on both sides move with one operation per side. Applying maps every
//! sender range first (its fresh frames), then every receiver range, then punches the freed
//! runs, so no frame is ever mapped in two VMs.

use std::fs::File;
use std::os::fd::AsRawFd;

use pageflip_abi::PAGE_SIZE;

use super::frames::{FrameRun, Mapping, Move};
use crate::memory::GuestRam;

/// How a batch merges operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Every page is its own operation (`remap-per-page`).
    PerPage,
    /// Adjacent runs merge (`remap`, `remap-huge`).
    Adjacent,
    /// Injected fault `coalesce-across-gap`: a mapping merges with the previous one of its VM
    /// when the GPAs are adjacent, whether or not the frames are.
    AcrossGaps,
}

/// The host operations of the moves planned since the last [`HostOps::apply`].
#[derive(Debug)]
pub struct HostOps {
    merge: Merge,
    sender: Vec<Mapping>,
    receiver: Vec<Mapping>,
    freed: Vec<FrameRun>,
}

impl HostOps {
    /// An empty batch that merges as `merge` says.
    pub fn new(merge: Merge) -> HostOps {
        HostOps {
            merge,
            sender: Vec::new(),
            receiver: Vec::new(),
            freed: Vec::new(),
        }
    }

    /// Whether nothing is waiting to be applied.
    pub fn is_empty(&self) -> bool {
        self.sender.is_empty() && self.receiver.is_empty() && self.freed.is_empty()
    }

    /// Adds the operations of `m`; `skip_sender` leaves the sender's mappings as they are
    /// (injected faults that keep the sender's view of a sent page).
    pub fn add(&mut self, m: Move, skip_sender: bool) {
        if !skip_sender {
            for s in m.sender {
                self.push_mapping(s, true);
            }
        }
        for r in m.receiver {
            self.push_mapping(r, false);
        }
        for f in m.freed {
            self.push_freed(f);
        }
    }

    fn push_mapping(&mut self, m: Mapping, sender: bool) {
        let merge = self.merge;
        let list = if sender {
            &mut self.sender
        } else {
            &mut self.receiver
        };
        if merge == Merge::PerPage {
            list.extend((0..m.pages).map(|i| Mapping {
                gpa: m.gpa + u64::from(i) * PAGE_SIZE,
                frame: m.frame + i,
                pages: 1,
                ..m
            }));
            return;
        }
        if let Some(last) = list.iter_mut().rev().find(|l| l.vm == m.vm) {
            let gpa_next = last.gpa + u64::from(last.pages) * PAGE_SIZE == m.gpa;
            let frame_next = last.frame + last.pages == m.frame;
            if gpa_next && (frame_next || merge == Merge::AcrossGaps) {
                last.pages += m.pages;
                return;
            }
        }
        list.push(m);
    }

    fn push_freed(&mut self, f: FrameRun) {
        if self.merge == Merge::PerPage {
            self.freed.extend((0..f.pages).map(|i| FrameRun {
                frame: f.frame + i,
                pages: 1,
            }));
            return;
        }
        match self.freed.last_mut() {
            Some(last) if last.frame + last.pages == f.frame => last.pages += f.pages,
            _ => self.freed.push(f),
        }
    }

    /// Applies the batch to the host: `rams[vm]` is VM `vm`'s memory, `memfd` the run's
    /// page pool. Returns the operations made; failures are appended to `errors`.
    pub fn apply(&mut self, memfd: &File, rams: &[&GuestRam], errors: &mut Vec<String>) -> u64 {
        let mut ops = 0;
        for m in self.sender.drain(..).chain(self.receiver.drain(..)) {
            map_frames(memfd, rams[m.vm], m, errors);
            ops += 1;
        }
        for f in self.freed.drain(..) {
            punch(memfd, f, errors);
            ops += 1;
        }
        ops
    }
}

/// Maps `m.pages` frames from `m.frame` at `m.gpa` of `ram` (KVM's MMU notifier zaps the
/// old mapping).
fn map_frames(memfd: &File, ram: &GuestRam, m: Mapping, errors: &mut Vec<String>) {
    let len = u64::from(m.pages) * PAGE_SIZE;
    if !ram.contains(m.gpa, len) {
        errors.push(format!(
            "mapping at GPA {:#x} (+{len:#x}) is outside the VM",
            m.gpa
        ));
        return;
    }
    let hva = ram.host_base() + m.gpa;
    // SAFETY: `hva..hva+len` lies inside the VMM's mapping of this VM's memory (checked
    // above), which this process owns; MAP_FIXED replaces exactly those pages with pages of
    // the same memfd, so the mapping stays valid for vm-memory and KVM.
    let ret = unsafe {
        libc::mmap(
            hva as *mut libc::c_void,
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            memfd.as_raw_fd(),
            (u64::from(m.frame) * PAGE_SIZE) as libc::off_t,
        )
    };
    if ret == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        log::error!(
            "mmap of {} frames from {} at GPA {:#x} failed: {e}",
            m.pages,
            m.frame,
            m.gpa
        );
        errors.push(format!(
            "host mmap of {} frames from {} at GPA {:#x} failed: {e}",
            m.pages, m.frame, m.gpa
        ));
    }
}

/// Zeroes a freed run and gives its memory back to the host.
fn punch(memfd: &File, f: FrameRun, errors: &mut Vec<String>) {
    // SAFETY: fallocate on our own memfd with a valid range; no memory is accessed.
    let ret = unsafe {
        libc::fallocate(
            memfd.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            (u64::from(f.frame) * PAGE_SIZE) as libc::off_t,
            (u64::from(f.pages) * PAGE_SIZE) as libc::off_t,
        )
    };
    if ret != 0 {
        errors.push(format!(
            "zeroing {} freed frames from {} failed: {}",
            f.pages,
            f.frame,
            std::io::Error::last_os_error()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(src_gpa: u64, frame: u32, dst_gpa: u64, moved: u32, freed: u32) -> Move {
        Move {
            sender: vec![Mapping {
                vm: 0,
                gpa: src_gpa,
                frame,
                pages: 1,
            }],
            receiver: vec![Mapping {
                vm: 1,
                gpa: dst_gpa,
                frame: moved,
                pages: 1,
            }],
            freed: vec![FrameRun {
                frame: freed,
                pages: 1,
            }],
        }
    }

    #[test]
    fn adjacent_moves_coalesce_and_gaps_do_not() {
        let mut ops = HostOps::new(Merge::Adjacent);
        for i in 0..32u32 {
            let g = u64::from(i) * PAGE_SIZE;
            ops.add(
                mv(0x20_0000 + g, 100 + i, 0x40_0000 + g, 10 + i, 50 + i),
                false,
            );
        }
        assert_eq!(
            (ops.sender.len(), ops.receiver.len(), ops.freed.len()),
            (1, 1, 1)
        );
        assert_eq!(ops.receiver[0].pages, 32);
        // a frame gap on the receiver side, then a GPA gap
        ops.add(
            mv(
                0x20_0000 + 32 * PAGE_SIZE,
                132,
                0x40_0000 + 32 * PAGE_SIZE,
                99,
                82,
            ),
            false,
        );
        ops.add(
            mv(
                0x20_0000 + 34 * PAGE_SIZE,
                133,
                0x40_0000 + 34 * PAGE_SIZE,
                100,
                83,
            ),
            false,
        );
        assert_eq!(ops.sender.len(), 2, "GPA gap: {:?}", ops.sender);
        assert_eq!(
            ops.receiver.len(),
            3,
            "frame gap, then GPA gap: {:?}",
            ops.receiver
        );
        assert_eq!(ops.freed.len(), 1);
    }

    #[test]
    fn per_page_splits_and_across_gaps_ignores_frames() {
        let big = Move {
            sender: vec![Mapping {
                vm: 0,
                gpa: 0x20_0000,
                frame: 100,
                pages: 4,
            }],
            receiver: vec![Mapping {
                vm: 1,
                gpa: 0x40_0000,
                frame: 10,
                pages: 4,
            }],
            freed: vec![FrameRun {
                frame: 50,
                pages: 4,
            }],
        };
        let mut ops = HostOps::new(Merge::PerPage);
        ops.add(big.clone(), false);
        assert_eq!(
            (ops.sender.len(), ops.receiver.len(), ops.freed.len()),
            (4, 4, 4)
        );
        let mut ops = HostOps::new(Merge::AcrossGaps);
        ops.add(mv(0x20_0000, 1, 0x40_0000, 10, 50), false);
        ops.add(mv(0x20_1000, 7, 0x40_1000, 20, 51), false);
        assert_eq!((ops.sender.len(), ops.receiver.len()), (1, 1));
        let mut ops = HostOps::new(Merge::Adjacent);
        ops.add(big, true);
        assert!(
            ops.sender.is_empty(),
            "skip_sender keeps the sender's mappings"
        );
    }
}
