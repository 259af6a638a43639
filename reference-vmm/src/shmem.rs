//! The shared-memory transport (`shmem`, `pageflip_abi::shmem`): one memfd-backed region for
//! the run, mapped once into the VMM and given to every VM as an extra memslot at
//! `SHMEM_GPA`. The VMM takes no part in messages; at the end of the run it reads the rings'
//! indices for the transport report.

use std::sync::Arc;

use pageflip_abi::shmem::{ring_gpa, RingControl, SHMEM_GPA, SHMEM_SIZE};
use pageflip_abi::TRANSPORT_SHMEM;
use pageflip_interface::{TransportReport, TransportVmReport};

use crate::inject::{Fault, Injected};
use crate::memory::{GuestRam, MemoryError};
use crate::transport::{RunMemory, StartError, Transport, TransportSetup};
use crate::vm::VmMemory;

/// The shmem transport before the VMs exist: the region is created first, since every VM
/// maps it as a memslot.
#[derive(Debug)]
pub struct ShmemSetup {
    region: SharedRegion,
}

impl ShmemSetup {
    /// Creates the region of a run of `num_vms` VMs (private per VM under the
    /// `unshared-shmem` fault).
    pub fn create(num_vms: u32, injected: Injected) -> Result<ShmemSetup, MemoryError> {
        let private = injected.fault == Some(Fault::UnsharedShmem);
        Ok(ShmemSetup {
            region: SharedRegion::create(num_vms, private)?,
        })
    }
}

impl TransportSetup for ShmemSetup {
    fn boot_kind(&self) -> u32 {
        TRANSPORT_SHMEM
    }

    fn vm_memory(&self, vm: u32) -> VmMemory {
        VmMemory {
            readonly_page: None,
            extra: Some((SHMEM_GPA, self.region.for_vm(vm))),
        }
    }

    fn start(self: Box<Self>, _run: &RunMemory<'_>) -> Result<Arc<dyn Transport>, StartError> {
        Ok(Arc::new(self.region))
    }
}

/// The VMM takes no part in shmem messages: it only reports the rings' indices at the end.
impl Transport for SharedRegion {
    fn report(&self) -> Option<TransportReport> {
        Some(SharedRegion::report(self))
    }
}

/// The shared region of a run (or, with the `unshared-shmem` fault, one private region per
/// VM). Its pages are allocated when touched.
#[derive(Debug)]
pub struct SharedRegion {
    regions: Vec<Arc<GuestRam>>,
    num_vms: u32,
}

impl SharedRegion {
    /// Creates the region for a run of `num_vms` VMs: one shared by all, or one per VM if
    /// `private` (an injected fault).
    pub fn create(num_vms: u32, private: bool) -> Result<SharedRegion, MemoryError> {
        let count = if private { num_vms } else { 1 };
        let regions = (0..count)
            .map(|i| GuestRam::new(&format!("shmem-{i}"), SHMEM_SIZE).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(SharedRegion { regions, num_vms })
    }

    /// The region VM `vm` maps at `SHMEM_GPA`.
    pub fn for_vm(&self, vm: u32) -> Arc<GuestRam> {
        self.regions[vm as usize % self.regions.len()].clone()
    }

    /// The indices of the ring from `src` to `dst` as VM `viewer` sees them.
    fn ring(&self, viewer: u32, src: u32, dst: u32) -> RingControl {
        self.for_vm(viewer)
            .read_pod::<RingControl>(ring_gpa(src, dst) - SHMEM_GPA)
            .expect("every ring lies inside the region")
    }

    /// The transport report: per VM, `sent` is the sum of the `head`s of its outgoing rings
    /// and `received` the sum of the `tail`s of its incoming ones.
    pub fn report(&self) -> TransportReport {
        let n = self.num_vms;
        let vms = (0..n)
            .map(|v| {
                let others = (0..n).filter(move |&o| o != v);
                TransportVmReport {
                    sent: others.clone().map(|d| self.ring(v, v, d).head).sum(),
                    received: others.map(|s| self.ring(v, s, v).tail).sum(),
                    ..Default::default()
                }
            })
            .collect();
        TransportReport {
            kind: "shmem".into(),
            vms,
            ownership: None,
            pre_fault: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_indices(r: &SharedRegion, viewer: u32, src: u32, dst: u32, head: u64, tail: u64) {
        let mut c = r.ring(viewer, src, dst);
        c.head = head;
        c.tail = tail;
        assert!(r
            .for_vm(viewer)
            .write_pod(ring_gpa(src, dst) - SHMEM_GPA, &c));
    }

    #[test]
    fn shared_region_is_one_and_report_sums_rings() {
        let r = SharedRegion::create(3, false).unwrap();
        assert!(Arc::ptr_eq(&r.for_vm(0), &r.for_vm(2)));
        set_indices(&r, 0, 0, 1, 5, 4);
        set_indices(&r, 0, 0, 2, 7, 7);
        set_indices(&r, 0, 2, 1, 1, 1);
        let rep = r.report();
        assert_eq!(rep.kind, "shmem");
        assert_eq!((rep.vms[0].sent, rep.vms[0].received), (12, 0));
        assert_eq!((rep.vms[1].sent, rep.vms[1].received), (0, 5));
        assert_eq!((rep.vms[2].sent, rep.vms[2].received), (1, 7));
        assert!(rep.vms[0].virtio.is_none() && rep.ownership.is_none());
    }

    #[test]
    fn private_regions_do_not_share() {
        let r = SharedRegion::create(2, true).unwrap();
        assert!(!Arc::ptr_eq(&r.for_vm(0), &r.for_vm(1)));
        set_indices(&r, 0, 0, 1, 3, 0);
        // VM 1 never sees what VM 0 wrote.
        assert_eq!(r.report().vms[1].received, 0);
        assert_eq!(r.report().vms[0].sent, 3);
    }
}
