//! pageflip's guest images: static x86-64 ELF executables, embedded at build time.
//!
//! `build.rs` builds the `no_std` guest programs of `workloads/guest` (one per file in its
//! `src/bin`) with their own cargo invocation and linker script. Each image is linked at
//! `pageflip_abi::IMAGE_BASE` (0x200000) and loads at its segments' physical addresses; a
//! VMM runs it at CPL3 in long mode as `docs/abi.md` describes.
//!
//! ```
//! let hello = pageflip_workloads::image(pageflip_workloads::HELLO).unwrap();
//! assert_eq!(&hello[..4], b"\x7fELF");
//! ```

include!(concat!(env!("OUT_DIR"), "/images.rs"));

/// `hello`: prints a greeting, checks the boot info, reports it as samples.
pub const HELLO: &str = "hello";
/// `fault`: faults as `params[0]` says; must not survive.
pub const FAULT: &str = "fault";
/// `spin`: spins forever without exits (for the watchdog).
pub const SPIN: &str = "spin";
/// `isolation`: checks that no VM sees another VM's memory.
pub const ISOLATION: &str = "isolation";
/// `doorbell`: exactly `params[0]` doorbell writes in the measured phase.
pub const DOORBELL: &str = "doorbell";
/// `notify_floor`: K virtio notifications of an empty queue, the floor of an in-kernel
/// (ioeventfd) exit.
pub const NOTIFY_FLOOR: &str = "notify_floor";
/// `panic`: panics on purpose.
pub const PANIC: &str = "panic";
/// `hostile`: makes requests the VMM must refuse and checks the statuses.
pub const HOSTILE: &str = "hostile";
/// `stream`: remap IPC, VM0 sends `count` messages to VM1, which checks them all.
pub const STREAM: &str = "stream";
/// `pingpong`: remap IPC, VM0 and VM1 exchange messages; VM0 samples round trips.
pub const PINGPONG: &str = "pingpong";
/// `fanin`: remap IPC, VMs 1..n-1 each send `count` messages to VM0.
pub const FANIN: &str = "fanin";
/// `chain`: K VMs in a line; VM0 sends `count` messages, each middle VM checks their headers
/// and forwards them, the last VM checks them all.
pub const CHAIN: &str = "chain";
/// `ipc_security`: after a remap send the sender cannot see what the receiver writes.
pub const IPC_SECURITY: &str = "ipc_security";
/// `ipc_semantics`: exact exits of immediate, deferred, urgent and unrelated-exit drains.
pub const IPC_SEMANTICS: &str = "ipc_semantics";
/// `ipc_hostile`: bad descriptors get their statuses; backpressure loses nothing.
pub const IPC_HOSTILE: &str = "ipc_hostile";
/// `ipc_forward`: a received page forwarded to a third VM arrives intact.
pub const IPC_FORWARD: &str = "ipc_forward";
/// `ipc_landing`: messages land in the posted entries as the ABI says (gapped extents,
/// several entries, partial use), and every skipped entry gets its status.
pub const IPC_LANDING: &str = "ipc_landing";
/// `ipc_peer_end`: bad posts examined once, `IPC_RECV_WAIT` sets `STATUS`, and sends to a VM
/// that has ended get `dest_down`.
pub const IPC_PEER_END: &str = "ipc_peer_end";
/// `ipc_fuzz`: a seeded guest that throws random descriptors, posts, ring indices and
/// device accesses at the VMM, then checks that a good message still arrives intact.
pub const IPC_FUZZ: &str = "ipc_fuzz";

/// `virtio_init`: the virtio datagram device's initialisation, step by step, and its refusal
/// of bad feature sets, queue sizes and early notifications.
pub const VIRTIO_INIT: &str = "virtio_init";
/// `virtio_hostile`: bad virtio tx chains get their documented answers; the device still
/// delivers afterwards.
pub const VIRTIO_HOSTILE: &str = "virtio_hostile";

/// The ELF image of the guest `name`, if there is one.
pub fn image(name: &str) -> Option<&'static [u8]> {
    IMAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// The names of all guest images, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    IMAGES.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pageflip_abi::{IMAGE_BASE, MIN_MEM_SIZE};
    use pageflip_vmm::elf::{program_headers, read_header};

    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const PT_TLS: u32 = 7;
    const PF_X: u32 = 1;

    /// One program header.
    #[derive(Debug)]
    struct Phdr {
        p_type: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        paddr: u64,
        filesz: u64,
        memsz: u64,
    }

    /// Checks the ELF header (with the VMM's reader) and returns the entry point and program
    /// headers.
    fn parse(name: &str, b: &[u8]) -> (u64, Vec<Phdr>) {
        let h = read_header(b).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.e_ident[6], 1, "{name}: not ELF version 1");
        assert_eq!(h.e_type, 2, "{name}: not ET_EXEC");
        assert_eq!(h.e_machine, 62, "{name}: not EM_X86_64");
        let phdrs = program_headers(b, &h)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .into_iter()
            .map(|(_, ph)| Phdr {
                p_type: ph.p_type,
                flags: ph.p_flags,
                offset: ph.p_offset,
                vaddr: ph.p_vaddr,
                paddr: ph.p_paddr,
                filesz: ph.p_filesz,
                memsz: ph.p_memsz,
            })
            .collect();
        (h.e_entry, phdrs)
    }

    #[test]
    fn every_guest_has_an_image() {
        let names: Vec<_> = names().collect();
        let mut want = [
            HELLO,
            FAULT,
            SPIN,
            ISOLATION,
            DOORBELL,
            NOTIFY_FLOOR,
            PANIC,
            HOSTILE,
            STREAM,
            PINGPONG,
            FANIN,
            CHAIN,
            IPC_SECURITY,
            IPC_SEMANTICS,
            IPC_HOSTILE,
            IPC_FORWARD,
            IPC_LANDING,
            IPC_PEER_END,
            IPC_FUZZ,
            VIRTIO_INIT,
            VIRTIO_HOSTILE,
        ];
        want.sort_unstable();
        assert_eq!(names, want);
        for name in want {
            assert!(image(name).is_some(), "{name}");
        }
        assert!(image("no-such-guest").is_none());
    }

    #[test]
    fn images_are_static_x86_64_executables() {
        for (name, bytes) in IMAGES {
            let (_, phdrs) = parse(name, bytes);
            for ph in &phdrs {
                assert!(
                    ![PT_DYNAMIC, PT_INTERP, PT_TLS].contains(&ph.p_type),
                    "{name}: has a program header of type {}",
                    ph.p_type
                );
            }
        }
    }

    #[test]
    fn segments_load_at_or_above_image_base() {
        for (name, bytes) in IMAGES {
            let (_, phdrs) = parse(name, bytes);
            let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
            assert!(!loads.is_empty(), "{name}: no PT_LOAD segment");
            for ph in loads {
                assert!(
                    ph.paddr >= IMAGE_BASE,
                    "{name}: {ph:x?} loads below IMAGE_BASE"
                );
                assert_eq!(ph.vaddr, ph.paddr, "{name}: {ph:x?} not identity mapped");
                assert!(ph.filesz <= ph.memsz, "{name}: {ph:x?}");
                assert!(
                    ph.offset + ph.filesz <= bytes.len() as u64,
                    "{name}: {ph:x?} past the end of the file"
                );
                // The image must leave free memory in the smallest VM.
                assert!(
                    ph.paddr + ph.memsz < MIN_MEM_SIZE,
                    "{name}: {ph:x?} does not fit below MIN_MEM_SIZE"
                );
            }
        }
    }

    #[test]
    fn entry_point_is_in_an_executable_segment() {
        for (name, bytes) in IMAGES {
            let (entry, phdrs) = parse(name, bytes);
            let inside = phdrs.iter().any(|p| {
                p.p_type == PT_LOAD
                    && p.flags & PF_X != 0
                    && (p.vaddr..p.vaddr + p.filesz).contains(&entry)
            });
            assert!(
                inside,
                "{name}: entry {entry:#x} is in no executable PT_LOAD segment"
            );
        }
    }
}
