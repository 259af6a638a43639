//! Page ownership for remap IPC: which pool frame backs each guest page of each VM, who owns
//! every frame, and the free runs. Pure bookkeeping: the engine applies the [`Move`]s it
//! plans to the host mappings.
//!
//! Free frames are kept as runs (start, length) that coalesce when neighbours are freed, so
//! a move of n contiguous pages takes one fresh run and its host cost does not grow with n.
//! Frames freed by a move are quarantined until the engine has applied the moves planned so
//! far ([`FrameTable::release_quarantine`]): until then a receiver may still map them, and
//! they hold its old data, so they must not be handed to anyone.
//!
//! The audit proves, at the end of a run, that every frame belongs to exactly one VM or is
//! free, and that no frame is mapped twice.

use std::collections::BTreeMap;

use pageflip_abi::PAGE_SIZE;
use pageflip_interface::OwnershipAudit;

/// Owner of a frame: a VM index, or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Belongs to this VM.
    Vm(u8),
    /// Free (on a free run, or quarantined).
    Free,
}

/// `pages` frames from `frame`, mapped at `gpa` of VM `vm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The VM.
    pub vm: usize,
    /// GPA of the first page.
    pub gpa: u64,
    /// First frame.
    pub frame: u32,
    /// Pages (and frames).
    pub pages: u32,
}

/// A run of frames: `pages` frames from `frame`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRun {
    /// First frame.
    pub frame: u32,
    /// Frames in the run.
    pub pages: u32,
}

/// What one move of a GPA range changes on the host, each part split at frame discontinuities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Move {
    /// Fresh frames for the sender's range.
    pub sender: Vec<Mapping>,
    /// The moved frames at the receiver's range.
    pub receiver: Vec<Mapping>,
    /// The receiver's old frames, now free (to be zeroed and released).
    pub freed: Vec<FrameRun>,
}

/// Why a move could not be planned.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// The free runs (quarantine aside) hold fewer frames than the move needs.
    #[error("the page pool has no {0} free frames (aligned as needed)")]
    PoolEmpty(u32),
}

/// The frame table of a run.
#[derive(Debug)]
pub struct FrameTable {
    owner: Vec<Owner>,
    /// Per VM: frame of each guest page (index = GPA / 4096).
    frame_of: Vec<Vec<u32>>,
    /// Free runs: start frame -> length. Adjacent runs are always merged.
    free: BTreeMap<u32, u32>,
    /// Runs freed since the last [`FrameTable::release_quarantine`].
    quarantine: Vec<FrameRun>,
    /// Frames are allocated in runs aligned to, and a multiple of, this many frames.
    align: u32,
    names: Vec<String>,
}

impl FrameTable {
    /// VM `i` has `pages[i]` pages backed by consecutive frames from `first[i]`; frames
    /// `[pool_first, pool_first + pool_pages)` start free. Fresh runs are allocated aligned
    /// to `align` frames (1, or 512 for 2 MiB huge pages).
    pub fn new(
        vms: &[(String, u32, u32)],
        pool_first: u32,
        pool_pages: u32,
        align: u32,
    ) -> FrameTable {
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
        let mut table = FrameTable {
            owner,
            frame_of,
            free: BTreeMap::new(),
            quarantine: Vec::new(),
            align: align.max(1),
            names: vms.iter().map(|v| v.0.clone()).collect(),
        };
        table.insert_free(FrameRun {
            frame: pool_first,
            pages: pool_pages,
        });
        table
    }

    /// A table for VMs laid out one after another from the start of the run's memfd (VM
    /// `i` has `vms[i].1` bytes), followed by `pool_pages` free frames: the runner's layout.
    pub fn contiguous(vms: &[(String, u64)], pool_pages: u32, align: u32) -> FrameTable {
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
        FrameTable::new(&layout, first, pool_pages, align)
    }

    /// The frame backing `gpa` in VM `vm`.
    pub fn frame(&self, vm: usize, gpa: u64) -> u32 {
        self.frame_of[vm][(gpa / PAGE_SIZE) as usize]
    }

    /// Free frames outside the quarantine.
    pub fn free_frames(&self) -> u64 {
        self.free.values().map(|&n| u64::from(n)).sum()
    }

    /// Moves `pages` pages at `src_gpa` of `src` to `dst_gpa` of `dst`: the sender's range
    /// gets fresh frames, the receiver's range the moved ones, and the receiver's old frames
    /// are quarantined. Plans and records it; nothing changes on error.
    pub fn move_range(
        &mut self,
        src: usize,
        src_gpa: u64,
        dst: usize,
        dst_gpa: u64,
        pages: u32,
    ) -> Result<Move, MoveError> {
        let fresh = self.alloc(pages)?;
        let sp = (src_gpa / PAGE_SIZE) as usize;
        let dp = (dst_gpa / PAGE_SIZE) as usize;
        let n = pages as usize;
        let moved: Vec<u32> = self.frame_of[src][sp..sp + n].to_vec();
        let freed: Vec<u32> = self.frame_of[dst][dp..dp + n].to_vec();
        let fresh_frames = fresh.iter().flat_map(|r| r.frame..r.frame + r.pages);
        for (i, f) in fresh_frames.enumerate() {
            self.frame_of[src][sp + i] = f;
            self.owner[f as usize] = Owner::Vm(src as u8);
        }
        for (i, &f) in moved.iter().enumerate() {
            self.frame_of[dst][dp + i] = f;
            self.owner[f as usize] = Owner::Vm(dst as u8);
        }
        for &f in &freed {
            self.owner[f as usize] = Owner::Free;
        }
        let freed = runs(&freed);
        self.quarantine.extend(freed.iter().copied());
        Ok(Move {
            sender: mappings(src, src_gpa, &self.frame_of[src][sp..sp + n]),
            receiver: mappings(dst, dst_gpa, &moved),
            freed,
        })
    }

    /// Returns the quarantined runs to the free runs: call once the moves planned so far are
    /// applied on the host (nothing maps those frames any more).
    pub fn release_quarantine(&mut self) {
        for run in std::mem::take(&mut self.quarantine) {
            self.insert_free(run);
        }
    }

    /// `pages` fresh frames: one aligned run if a free run can hold it (first fit), else
    /// aligned pieces of several runs in frame order.
    fn alloc(&mut self, pages: u32) -> Result<Vec<FrameRun>, MoveError> {
        let align = self.align;
        let aligned_in = |start: u32, len: u32| {
            let first = start.div_ceil(align) * align;
            (first, (start + len).saturating_sub(first))
        };
        let whole = self.free.iter().find_map(|(&start, &len)| {
            let (first, room) = aligned_in(start, len);
            (room >= pages).then_some(first)
        });
        if let Some(first) = whole {
            self.take_free(FrameRun {
                frame: first,
                pages,
            });
            return Ok(vec![FrameRun {
                frame: first,
                pages,
            }]);
        }
        let mut pieces = Vec::new();
        let mut left = pages;
        for (&start, &len) in &self.free {
            let (first, room) = aligned_in(start, len);
            let take = (room / align * align).min(left);
            if take > 0 {
                pieces.push(FrameRun {
                    frame: first,
                    pages: take,
                });
                left -= take;
            }
            if left == 0 {
                break;
            }
        }
        if left > 0 {
            return Err(MoveError::PoolEmpty(pages));
        }
        for &p in &pieces {
            self.take_free(p);
        }
        Ok(pieces)
    }

    /// Removes `run` (inside one free run) from the free runs.
    fn take_free(&mut self, run: FrameRun) {
        let (&start, &len) = self
            .free
            .range(..=run.frame)
            .next_back()
            .expect("alloc takes runs inside free runs");
        self.free.remove(&start);
        if run.frame > start {
            self.free.insert(start, run.frame - start);
        }
        let end = start + len;
        let run_end = run.frame + run.pages;
        if end > run_end {
            self.free.insert(run_end, end - run_end);
        }
    }

    /// Adds `run` to the free runs, merging it with its neighbours.
    fn insert_free(&mut self, run: FrameRun) {
        if run.pages == 0 {
            return;
        }
        let mut start = run.frame;
        let mut len = run.pages;
        if let Some((&s, &l)) = self.free.range(..start).next_back() {
            if s + l == start {
                self.free.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(&l) = self.free.get(&(run.frame + run.pages)) {
            self.free.remove(&(run.frame + run.pages));
            len += l;
        }
        self.free.insert(start, len);
    }

    /// Records a fault: `frame` is mapped at `gpa` of `vm` as well, without any ownership
    /// change (used only by injected faults, to prove the audit catches it).
    pub fn alias(&mut self, vm: usize, gpa: u64, frame: u32) {
        self.frame_of[vm][(gpa / PAGE_SIZE) as usize] = frame;
    }

    /// Records a fault: one frame leaves the free runs without an owner's mapping (a leak).
    pub fn leak(&mut self) -> Option<u32> {
        let (&start, _) = self.free.iter().next()?;
        self.take_free(FrameRun {
            frame: start,
            pages: 1,
        });
        self.owner[start as usize] = Owner::Vm(0);
        Some(start)
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
        let listed = self
            .free
            .iter()
            .map(|(&frame, &pages)| FrameRun { frame, pages })
            .chain(self.quarantine.iter().copied());
        for run in listed {
            for f in run.frame..run.frame + run.pages {
                match free_listed.get_mut(f as usize) {
                    Some(seen) => {
                        if std::mem::replace(seen, true) {
                            violations.push(format!("frame {f} is free twice"));
                        }
                    }
                    None => violations.push(format!("free frame {f} is outside the pool")),
                }
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
                (Owner::Free, false, false) => {
                    violations.push(format!("frame {f} is free but on no free run (leaked)"))
                }
                (Owner::Vm(v), false, _) => violations.push(format!(
                    "frame {f} is owned by {} but mapped nowhere (leaked)",
                    self.names[*v as usize]
                )),
                (Owner::Vm(_), true, true) => {
                    violations.push(format!("frame {f} is mapped and free"))
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

/// `frames` as maximal runs of consecutive frames, in order.
fn runs(frames: &[u32]) -> Vec<FrameRun> {
    let mut out: Vec<FrameRun> = Vec::new();
    for &f in frames {
        match out.last_mut() {
            Some(r) if r.frame + r.pages == f => r.pages += 1,
            _ => out.push(FrameRun { frame: f, pages: 1 }),
        }
    }
    out
}

/// The mappings that put `frames` at consecutive pages from `gpa` of `vm`: one per run of
/// consecutive frames.
fn mappings(vm: usize, gpa: u64, frames: &[u32]) -> Vec<Mapping> {
    let mut at = gpa;
    runs(frames)
        .into_iter()
        .map(|r| {
            let m = Mapping {
                vm,
                gpa: at,
                frame: r.frame,
                pages: r.pages,
            };
            at += u64::from(r.pages) * PAGE_SIZE;
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FrameTable {
        FrameTable::new(&[("a".into(), 0, 4), ("b".into(), 4, 4)], 8, 4, 1)
    }

    fn clean(t: &FrameTable) {
        let a = t.audit();
        assert!(a.violations.is_empty(), "{:?}", a.violations);
    }

    #[test]
    fn a_move_swaps_ownership_and_conserves_pages() {
        let mut t = table();
        let m = t.move_range(0, 0x2000, 1, 0x1000, 1).unwrap();
        assert_eq!(
            m.sender,
            vec![Mapping {
                vm: 0,
                gpa: 0x2000,
                frame: 8,
                pages: 1
            }]
        );
        assert_eq!(
            m.receiver,
            vec![Mapping {
                vm: 1,
                gpa: 0x1000,
                frame: 2,
                pages: 1
            }]
        );
        assert_eq!(m.freed, vec![FrameRun { frame: 5, pages: 1 }]);
        assert_eq!((t.frame(1, 0x1000), t.frame(0, 0x2000)), (2, 8));
        clean(&t);
        let a = t.audit();
        assert_eq!(a.pages_per_owner["a"], 4);
        assert_eq!(a.pages_per_owner["b"], 4);
        assert_eq!(a.pages_per_owner["free"], 4);
        assert_eq!(a.total_pages, 12);
        // forwarding the received page on
        t.move_range(1, 0x1000, 0, 0x3000, 1).unwrap();
        clean(&t);
    }

    #[test]
    fn a_contiguous_move_is_one_mapping_per_side_whatever_its_size() {
        let mut t = FrameTable::new(&[("a".into(), 0, 64), ("b".into(), 64, 64)], 128, 64, 1);
        let m = t.move_range(0, 0, 1, 16 * PAGE_SIZE, 32).unwrap();
        assert_eq!((m.sender.len(), m.receiver.len(), m.freed.len()), (1, 1, 1));
        assert_eq!(
            m.receiver[0],
            Mapping {
                vm: 1,
                gpa: 16 * PAGE_SIZE,
                frame: 0,
                pages: 32
            }
        );
        assert_eq!(
            m.freed[0],
            FrameRun {
                frame: 80,
                pages: 32
            }
        );
        clean(&t);
    }

    #[test]
    fn quarantined_frames_are_not_handed_out_until_released() {
        let mut t = FrameTable::new(&[("a".into(), 0, 4), ("b".into(), 4, 4)], 8, 1, 1);
        t.move_range(0, 0, 1, 0, 1).unwrap();
        assert_eq!(t.free_frames(), 0);
        assert_eq!(
            t.move_range(0, 0x1000, 1, 0x1000, 1),
            Err(MoveError::PoolEmpty(1))
        );
        clean(&t);
        t.release_quarantine();
        assert_eq!(t.free_frames(), 1);
        let m = t.move_range(0, 0x1000, 1, 0x1000, 1).unwrap();
        assert_eq!(
            m.sender[0].frame, 4,
            "b's old frame, zeroed, now fresh for a"
        );
        clean(&t);
    }

    #[test]
    fn freed_neighbours_coalesce_into_one_run() {
        let mut t = FrameTable::new(&[("a".into(), 0, 8), ("b".into(), 8, 8)], 16, 8, 1);
        for i in 0..4u64 {
            t.move_range(0, i * PAGE_SIZE, 1, i * PAGE_SIZE, 1).unwrap();
        }
        t.release_quarantine();
        // b's frames 8..12 came back one by one and merged; with the pool's rest: 8..12, 20..24
        assert_eq!(
            t.free.iter().map(|(&s, &l)| (s, l)).collect::<Vec<_>>(),
            [(8, 4), (20, 4)]
        );
        let m = t.move_range(0, 4 * PAGE_SIZE, 1, 4 * PAGE_SIZE, 4).unwrap();
        assert_eq!(
            m.sender,
            vec![Mapping {
                vm: 0,
                gpa: 4 * PAGE_SIZE,
                frame: 8,
                pages: 4
            }]
        );
        clean(&t);
    }

    #[test]
    fn a_fragmented_pool_still_serves_a_move_in_pieces() {
        let mut t = FrameTable::new(&[("a".into(), 0, 8), ("b".into(), 8, 8)], 16, 2, 1);
        t.move_range(0, 0, 1, 0, 1).unwrap(); // takes 16; quarantines 8
        t.release_quarantine(); // free: 8, 17
        let m = t.move_range(0, 0x4000, 1, 0x4000, 2).unwrap();
        assert_eq!(m.sender.len(), 2, "two fresh pieces: {:?}", m.sender);
        clean(&t);
    }

    #[test]
    fn huge_alignment_takes_whole_aligned_runs() {
        let mut t = FrameTable::new(
            &[("a".into(), 0, 1024), ("b".into(), 1024, 1024)],
            2048,
            1024,
            512,
        );
        let m = t.move_range(0, 0, 1, 512 * PAGE_SIZE, 512).unwrap();
        assert_eq!(
            m.sender,
            vec![Mapping {
                vm: 0,
                gpa: 0,
                frame: 2048,
                pages: 512
            }]
        );
        assert_eq!(
            m.freed,
            vec![FrameRun {
                frame: 1536,
                pages: 512
            }]
        );
        assert!(t.free.keys().all(|s| s % 512 == 0));
        clean(&t);
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
            1,
        );
        assert_eq!((t.frame(0, 0), t.frame(0, 3 * PAGE_SIZE)), (0, 3));
        assert_eq!((t.frame(1, 0), t.frame(1, PAGE_SIZE)), (4, 5));
        let a = t.audit();
        assert_eq!((a.total_pages, a.pages_per_owner["free"]), (9, 3));
        assert!(a.violations.is_empty());
    }

    #[test]
    fn empty_pool_is_an_error_not_a_panic() {
        let mut t = FrameTable::new(&[("a".into(), 0, 2), ("b".into(), 2, 2)], 4, 0, 1);
        assert_eq!(t.move_range(0, 0, 1, 0, 1), Err(MoveError::PoolEmpty(1)));
        clean(&t);
    }
}
