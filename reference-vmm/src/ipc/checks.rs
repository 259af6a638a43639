//! The checks of remap IPC's guest-written fields, in the order `docs/remap-ipc.md` gives:
//! a send descriptor's extents, length and destination ([`check_desc`]), and a posted
//! landing extent ([`check_post`]). Pure functions of the values and the VM's memory size.

use pageflip_abi::ipc::{Extent, IpcStatus, SendDesc, HUGE_PAGES, MAX_EXTENTS, MAX_MSG_PAGES};
use pageflip_abi::{IMAGE_BASE, PAGE_SIZE};

/// What the checks need to know about the run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of guest memory of the VM whose fields are checked.
    pub mem_size: u64,
    /// VMs in the run.
    pub num_vms: usize,
    /// Extents must be whole 2 MiB huge pages (`remap-huge`).
    pub huge: bool,
}

/// The end of `pages` pages from `gpa` if that is a valid run of guest memory of `mem_size`
/// bytes: pages at least 1, page-aligned, inside memory, no overflow.
fn extent_end(gpa: u64, pages: u32, mem_size: u64) -> Option<u64> {
    if pages == 0 || !gpa.is_multiple_of(PAGE_SIZE) {
        return None;
    }
    let end = gpa.checked_add(u64::from(pages) * PAGE_SIZE)?;
    (end <= mem_size).then_some(end)
}

/// Whether a run is whole, aligned 2 MiB huge pages.
fn is_huge(gpa: u64, pages: u32) -> bool {
    gpa.is_multiple_of(u64::from(HUGE_PAGES) * PAGE_SIZE) && pages.is_multiple_of(HUGE_PAGES)
}

/// Whether `[a, a_end)` and `[b, b_end)` share a byte.
pub fn overlaps(a: &Extent, b: &Extent) -> bool {
    a.gpa < b.end() && b.gpa < a.end()
}

/// Checks a descriptor of VM `src` (everything but the receiver's capacity); the extents
/// it names on success.
pub fn check_desc(d: &SendDesc, src: usize, limits: Limits) -> Result<&[Extent], IpcStatus> {
    let n = d.nextents as usize;
    if n == 0 || n > MAX_EXTENTS {
        return Err(IpcStatus::TooManyExtents);
    }
    let extents = &d.extents[..n];
    for e in extents {
        if extent_end(e.gpa, e.pages, limits.mem_size).is_none() {
            return Err(IpcStatus::BadAddress);
        }
        if e.gpa < IMAGE_BASE {
            return Err(IpcStatus::NotOwned);
        }
    }
    let pages: u64 = extents.iter().map(|e| u64::from(e.pages)).sum();
    if pages > u64::from(MAX_MSG_PAGES) {
        return Err(IpcStatus::TooManyPages);
    }
    if d.len == 0 || u64::from(d.len) > pages * PAGE_SIZE {
        return Err(IpcStatus::BadLength);
    }
    for (i, a) in extents.iter().enumerate() {
        if extents[..i].iter().any(|b| overlaps(a, b)) {
            return Err(IpcStatus::Overlap);
        }
    }
    let dst = d.dst as usize;
    if dst >= limits.num_vms {
        return Err(IpcStatus::UnknownDest);
    }
    if dst == src {
        return Err(IpcStatus::SelfSend);
    }
    if limits.huge && !extents.iter().all(|e| is_huge(e.gpa, e.pages)) {
        return Err(IpcStatus::NotHuge);
    }
    Ok(extents)
}

/// Checks a posted landing extent of the receiver, given the landing extents of the
/// messages it has not consumed (`busy`) and the extents already taken for this message.
pub fn check_post(
    p: &Extent,
    limits: Limits,
    busy: &[Extent],
    taken: &[Extent],
) -> Result<(), IpcStatus> {
    if extent_end(p.gpa, p.pages, limits.mem_size).is_none() {
        return Err(IpcStatus::BadAddress);
    }
    if p.gpa < IMAGE_BASE {
        return Err(IpcStatus::NotOwned);
    }
    if limits.huge && !is_huge(p.gpa, p.pages) {
        return Err(IpcStatus::NotHuge);
    }
    if busy.iter().any(|b| overlaps(p, b)) {
        return Err(IpcStatus::Busy);
    }
    if taken.iter().any(|t| overlaps(p, t)) {
        return Err(IpcStatus::Overlap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: u64 = 16 << 20;
    const LIMITS: Limits = Limits {
        mem_size: MEM,
        num_vms: 2,
        huge: false,
    };

    fn ext(gpa: u64, pages: u32) -> Extent {
        Extent {
            gpa,
            pages,
            reserved: 0,
        }
    }

    fn desc(extents: &[Extent], len: u32, dst: u32) -> SendDesc {
        let mut d = SendDesc {
            seq: 0,
            dst,
            flags: 0,
            len,
            nextents: extents.len() as u32,
            status: 0,
            reserved: 0,
            extents: [Extent::default(); MAX_EXTENTS],
        };
        let n = extents.len().min(MAX_EXTENTS);
        d.extents[..n].copy_from_slice(&extents[..n]);
        d
    }

    fn status(extents: &[Extent], len: u32, dst: u32, limits: Limits) -> IpcStatus {
        match check_desc(&desc(extents, len, dst), 0, limits) {
            Ok(_) => IpcStatus::Ok,
            Err(s) => s,
        }
    }

    #[test]
    fn each_descriptor_field_gets_its_status() {
        let good = ext(0x20_0000, 2);
        let cases: &[(&[Extent], u32, u32, IpcStatus)] = &[
            (&[good], 8192, 1, IpcStatus::Ok),
            (&[], 1, 1, IpcStatus::TooManyExtents),
            (&[good; 9], 1, 1, IpcStatus::TooManyExtents),
            (&[ext(0x20_0000, 0)], 1, 1, IpcStatus::BadAddress),
            (&[ext(0x20_0008, 1)], 1, 1, IpcStatus::BadAddress),
            (&[ext(MEM - PAGE_SIZE, 2)], 1, 1, IpcStatus::BadAddress),
            (&[ext(!0xfff, 1)], 1, 1, IpcStatus::BadAddress),
            (&[ext(0x1f_f000, 2)], 1, 1, IpcStatus::NotOwned),
            (&[ext(0x20_0000, 2049)], 1, 1, IpcStatus::TooManyPages),
            (&[good], 0, 1, IpcStatus::BadLength),
            (&[good], 8193, 1, IpcStatus::BadLength),
            (&[good, ext(0x20_1000, 1)], 1, 1, IpcStatus::Overlap),
            (&[good], 1, 2, IpcStatus::UnknownDest),
            (&[good], 1, 0, IpcStatus::SelfSend),
        ];
        for &(extents, len, dst, want) in cases {
            assert_eq!(
                status(extents, len, dst, LIMITS),
                want,
                "{extents:?} len {len} dst {dst}"
            );
        }
    }

    #[test]
    fn the_first_failing_check_decides() {
        // a bad address in extent 1 beats a not-owned extent 2, and both beat the length
        let extents = [ext(0x20_0000, 1), ext(0x20_0001, 1), ext(0x10_0000, 1)];
        assert_eq!(status(&extents, 0, 0, LIMITS), IpcStatus::BadAddress);
        let extents = [ext(0x10_0000, 1), ext(0x20_0001, 1)];
        assert_eq!(status(&extents, 0, 0, LIMITS), IpcStatus::NotOwned);
        // too many pages is found before a bad length, overlap before the destination
        assert_eq!(
            status(&[ext(0x20_0000, 2049)], 0, 0, LIMITS),
            IpcStatus::TooManyPages
        );
        let extents = [ext(0x20_0000, 1), ext(0x20_0000, 1)];
        assert_eq!(status(&extents, 1, 0, LIMITS), IpcStatus::Overlap);
    }

    #[test]
    fn huge_runs_need_whole_aligned_huge_pages() {
        let huge = Limits {
            huge: true,
            ..LIMITS
        };
        assert_eq!(status(&[ext(0x20_0000, 512)], 1, 1, huge), IpcStatus::Ok);
        assert_eq!(
            status(&[ext(0x20_0000, 511)], 1, 1, huge),
            IpcStatus::NotHuge
        );
        assert_eq!(
            status(&[ext(0x20_1000, 512)], 1, 1, huge),
            IpcStatus::NotHuge
        );
        assert_eq!(status(&[ext(0x20_0000, 511)], 1, 1, LIMITS), IpcStatus::Ok);
    }

    #[test]
    fn posts_are_checked_against_memory_busy_and_taken_extents() {
        let p = ext(0x40_0000, 4);
        assert_eq!(check_post(&p, LIMITS, &[], &[]), Ok(()));
        assert_eq!(
            check_post(&ext(0x40_0000, 0), LIMITS, &[], &[]),
            Err(IpcStatus::BadAddress)
        );
        assert_eq!(
            check_post(&ext(MEM, 1), LIMITS, &[], &[]),
            Err(IpcStatus::BadAddress)
        );
        assert_eq!(
            check_post(&ext(0x1000, 1), LIMITS, &[], &[]),
            Err(IpcStatus::NotOwned)
        );
        let huge = Limits {
            huge: true,
            ..LIMITS
        };
        assert_eq!(check_post(&p, huge, &[], &[]), Err(IpcStatus::NotHuge));
        let busy = [ext(0x40_3000, 1)];
        assert_eq!(check_post(&p, LIMITS, &busy, &[]), Err(IpcStatus::Busy));
        assert_eq!(check_post(&p, LIMITS, &[], &busy), Err(IpcStatus::Overlap));
        assert_eq!(
            check_post(&p, LIMITS, &[ext(0x40_4000, 1)], &[]),
            Ok(()),
            "adjacent is fine"
        );
    }
}
