//! Page ownership for remap IPC: which pool frame backs each guest page of each VM, who owns
//! every frame, and the free list. Pure bookkeeping: the engine applies each [`Remap`] to
//! the host mappings. The audit proves, at the end of a run, that every frame belongs to
//! exactly one VM or to the free list and that no frame is mapped twice.

use std::collections::BTreeMap;

use pageflip_abi::PAGE_SIZE;
use pageflip_interface::OwnershipAudit;

/// Owner of a frame: a VM index, or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Belongs to this VM.
    Vm(u8),
    /// On the free list.
    Free,
}

/// What one page remap changes: the frames to map at the sender's and receiver's GPAs, and the
/// frame that goes back to the free list (to be zeroed and released).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remap {
    /// The frame that moves from the sender to the receiver.
    pub moved: u32,
    /// The fresh frame the sender's GPA gets.
    pub fresh: u32,
    /// The receiver's old frame at the landing GPA, now free.
    pub freed: u32,
}

/// The frame table of a run.
#[derive(Debug)]
pub struct FrameTable {
    owner: Vec<Owner>,
    /// Per VM: frame of each guest page (index = GPA / 4096).
    frame_of: Vec<Vec<u32>>,
    free: Vec<u32>,
    names: Vec<String>,
}

/// Why a remap could not be planned.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemapError {
    /// The free list is empty.
    #[error("the page pool has no free page")]
    PoolEmpty,
}

impl FrameTable {
    /// VM `i` has `pages[i]` pages backed by consecutive frames from `first[i]`; frames
    /// `[pool_first, pool_first + pool_pages)` start free.
    pub fn new(vms: &[(String, u32, u32)], pool_first: u32, pool_pages: u32) -> FrameTable {
        let total = pool_first + pool_pages;
        let mut owner = vec![Owner::Free; total as usize];
        let mut frame_of = Vec::with_capacity(vms.len());
        for (i, (_, first, pages)) in vms.iter().enumerate() {
            let frames: Vec<u32> = (*first..first + pages).collect();
            for &f in &frames {
                owner[f as usize] = Owner::Vm(i as u8);
            }
            frame_of.push(frames);
        }
        FrameTable {
            owner,
            frame_of,
            free: (pool_first..total).rev().collect(),
            names: vms.iter().map(|v| v.0.clone()).collect(),
        }
    }

    /// A table for VMs laid out one after another from the start of the run's memfd (VM
    /// `i` has `vms[i].1` bytes), followed by `pool_pages` free frames: the runner's layout.
    pub fn contiguous(vms: &[(String, u64)], pool_pages: u32) -> FrameTable {
        let mut first = 0u32;
        let layout: Vec<(String, u32, u32)> = vms
            .iter()
            .map(|(name, bytes)| {
                let pages = (bytes / PAGE_SIZE) as u32;
                let entry = (name.clone(), first, pages);
                first += pages;
                entry
            })
            .collect();
        FrameTable::new(&layout, first, pool_pages)
    }

    /// The frame backing `gpa` in VM `vm`.
    pub fn frame(&self, vm: usize, gpa: u64) -> u32 {
        self.frame_of[vm][(gpa / PAGE_SIZE) as usize]
    }

    /// Moves the page at `src_gpa` of `src` to `dst_gpa` of `dst`: plans and records it.
    pub fn remap(
        &mut self,
        src: usize,
        src_gpa: u64,
        dst: usize,
        dst_gpa: u64,
    ) -> Result<Remap, RemapError> {
        let fresh = self.free.pop().ok_or(RemapError::PoolEmpty)?;
        let sp = (src_gpa / PAGE_SIZE) as usize;
        let dp = (dst_gpa / PAGE_SIZE) as usize;
        let moved = self.frame_of[src][sp];
        let freed = self.frame_of[dst][dp];
        self.frame_of[src][sp] = fresh;
        self.frame_of[dst][dp] = moved;
        self.owner[fresh as usize] = Owner::Vm(src as u8);
        self.owner[moved as usize] = Owner::Vm(dst as u8);
        self.owner[freed as usize] = Owner::Free;
        self.free.push(freed);
        Ok(Remap {
            moved,
            fresh,
            freed,
        })
    }

    /// Records a fault: `frame` is mapped at `gpa` of `vm` as well, without any ownership
    /// change (used only by injected faults, to prove the audit catches it).
    pub fn alias(&mut self, vm: usize, gpa: u64, frame: u32) {
        self.frame_of[vm][(gpa / PAGE_SIZE) as usize] = frame;
    }

    /// Records a fault: `frame` leaves the free list without an owner's mapping (a leak).
    pub fn leak(&mut self) -> Option<u32> {
        let f = self.free.pop()?;
        self.owner[f as usize] = Owner::Vm(0);
        Some(f)
    }

    /// Checks every invariant and counts pages per owner.
    pub fn audit(&self) -> OwnershipAudit {
        let mut violations = Vec::new();
        let mut mapped_by: Vec<Option<(usize, usize)>> = vec![None; self.owner.len()];
        for (vm, frames) in self.frame_of.iter().enumerate() {
            for (page, &f) in frames.iter().enumerate() {
                let gpa = page as u64 * PAGE_SIZE;
                if let Some((ovm, opage)) = mapped_by[f as usize] {
                    violations.push(format!(
                        "frame {f} is mapped twice: {} GPA {:#x} and {} GPA {gpa:#x}",
                        self.names[ovm],
                        opage as u64 * PAGE_SIZE,
                        self.names[vm]
                    ));
                }
                mapped_by[f as usize] = Some((vm, page));
                if self.owner[f as usize] != Owner::Vm(vm as u8) {
                    violations.push(format!(
                        "frame {f} is mapped by {} at GPA {gpa:#x} but owned by {:?}",
                        self.names[vm], self.owner[f as usize]
                    ));
                }
            }
        }
        let mut free_listed = vec![false; self.owner.len()];
        for &f in &self.free {
            if std::mem::replace(&mut free_listed[f as usize], true) {
                violations.push(format!("frame {f} is on the free list twice"));
            }
        }
        let mut pages_per_owner: BTreeMap<String, u64> = BTreeMap::new();
        for (f, owner) in self.owner.iter().enumerate() {
            let name = match owner {
                Owner::Vm(v) => self.names[*v as usize].clone(),
                Owner::Free => "free".to_string(),
            };
            *pages_per_owner.entry(name).or_default() += 1;
            match (owner, mapped_by[f].is_some(), free_listed[f]) {
                (Owner::Free, false, true) | (Owner::Vm(_), true, false) => {}
                (Owner::Free, true, _) => violations.push(format!("free frame {f} is mapped")),
                (Owner::Free, false, false) => violations.push(format!(
                    "frame {f} is free but not on the free list (leaked)"
                )),
                (Owner::Vm(v), false, _) => violations.push(format!(
                    "frame {f} is owned by {} but mapped nowhere (leaked)",
                    self.names[*v as usize]
                )),
                (Owner::Vm(_), true, true) => {
                    violations.push(format!("frame {f} is mapped and on the free list"))
                }
            }
        }
        OwnershipAudit {
            total_pages: self.owner.len() as u64,
            pages_per_owner,
            violations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FrameTable {
        FrameTable::new(&[("a".into(), 0, 4), ("b".into(), 4, 4)], 8, 2)
    }

    #[test]
    fn remap_moves_ownership_and_conserves_pages() {
        let mut t = table();
        let r = t.remap(0, 0x2000, 1, 0x1000).unwrap();
        assert_eq!(
            r,
            Remap {
                moved: 2,
                fresh: 8,
                freed: 5
            }
        );
        assert_eq!(t.frame(1, 0x1000), 2);
        assert_eq!(t.frame(0, 0x2000), 8);
        let a = t.audit();
        assert!(a.violations.is_empty(), "{:?}", a.violations);
        assert_eq!(a.pages_per_owner["a"], 4);
        assert_eq!(a.pages_per_owner["b"], 4);
        assert_eq!(a.pages_per_owner["free"], 2);
        assert_eq!(a.total_pages, 10);
        // forwarding the received page on
        t.remap(1, 0x1000, 0, 0x3000).unwrap();
        assert!(t.audit().violations.is_empty());
    }

    #[test]
    fn audit_catches_double_maps_and_leaks() {
        let mut t = table();
        t.alias(1, 0x0, t.frame(0, 0x1000));
        let v = t.audit().violations;
        assert!(v.iter().any(|m| m.contains("mapped twice")), "{v:?}");
        let mut t = table();
        t.leak().unwrap();
        let v = t.audit().violations;
        assert!(v.iter().any(|m| m.contains("leaked")), "{v:?}");
    }

    #[test]
    fn contiguous_lays_vms_out_one_after_another() {
        let t = FrameTable::contiguous(
            &[("a".into(), 4 * PAGE_SIZE), ("b".into(), 2 * PAGE_SIZE)],
            3,
        );
        assert_eq!((t.frame(0, 0), t.frame(0, 3 * PAGE_SIZE)), (0, 3));
        assert_eq!((t.frame(1, 0), t.frame(1, PAGE_SIZE)), (4, 5));
        let a = t.audit();
        assert_eq!((a.total_pages, a.pages_per_owner["free"]), (9, 3));
        assert!(a.violations.is_empty());
    }

    #[test]
    fn empty_pool_is_an_error_not_a_panic() {
        let mut t = FrameTable::new(&[("a".into(), 0, 2), ("b".into(), 2, 2)], 4, 0);
        assert_eq!(t.remap(0, 0, 1, 0), Err(RemapError::PoolEmpty));
    }
}
