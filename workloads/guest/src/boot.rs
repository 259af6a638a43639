//! The boot-info page.

use pageflip_abi::{BootInfo, BOOT_INFO_GPA};

/// The boot info the VMM wrote at [`BOOT_INFO_GPA`] before the guest started.
///
/// Its contents are whatever the VMM wrote: check [`BootInfo::magic`] before trusting them.
pub fn boot_info() -> &'static BootInfo {
    // SAFETY: the VMM maps the boot-info page (identity mapped, readable at CPL3) before the
    // guest starts and never changes it afterwards; nothing in the guest writes it (it is
    // read-only for the guest). BootInfo is made of integers only, so any bytes are a valid
    // value, and BOOT_INFO_GPA is page aligned.
    unsafe { &*(BOOT_INFO_GPA as *const BootInfo) }
}
