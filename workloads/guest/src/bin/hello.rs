//! `hello`: prints a greeting, checks the boot info and reports it as samples
//! (layout: [`pageflip_guest::abi::probes::hello`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pageflip_guest::abi::probes::hello;
use pageflip_guest::abi::{ABI_VERSION, BOOT_INFO_MAGIC, MAX_PARAMS, MAX_VMS};
use pageflip_guest::{boot_info, check, pass, println, sample};

pageflip_guest::entry!(main);

fn main() -> u64 {
    let bi = boot_info();
    println!("hello from VM {} of {}", bi.vm_id, bi.num_vms);
    check!(
        "boot-info",
        bi.magic == BOOT_INFO_MAGIC && bi.abi_version == ABI_VERSION,
        "magic {:#x} (want {:#x}), abi_version {} (want {})",
        bi.magic,
        BOOT_INFO_MAGIC,
        bi.abi_version,
        ABI_VERSION
    );
    pass("console");

    let mut s = [0u64; hello::COUNT];
    s[hello::VM_ID] = u64::from(bi.vm_id);
    s[hello::NUM_VMS] = u64::from(bi.num_vms);
    s[hello::MEM_SIZE] = bi.mem_size;
    s[hello::NUM_PEERS] = u64::from(bi.num_peers);
    for i in 0..MAX_VMS {
        s[hello::PEER_IDS + i] = if i < bi.num_peers as usize {
            u64::from(bi.peer_ids[i])
        } else {
            u64::MAX
        };
    }
    s[hello::NUM_PARAMS] = u64::from(bi.num_params);
    for i in 0..MAX_PARAMS {
        s[hello::PARAMS + i] = if i < bi.num_params as usize {
            bi.params[i]
        } else {
            0
        };
    }
    s[hello::TSC_KHZ] = bi.tsc_khz;
    s[hello::FREE_START] = bi.free_start;
    for v in s {
        sample(v);
    }
    0
}
