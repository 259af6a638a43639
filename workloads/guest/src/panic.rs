//! The panic handler: report, then exit with [`EXIT_PANIC`].

use core::panic::PanicInfo;

use pageflip_abi::mmio::DONE;
use pageflip_abi::EXIT_PANIC;

use crate::console;
use crate::global::Global;
use crate::mmio::mmio_write;
use crate::results::fail;

static PANICKING: Global<bool> = Global::new(false);

/// Prints `PANIC: <location>: <message>`, writes a FAIL record named `panic` with the message
/// and exits with [`EXIT_PANIC`]. A panic while doing so exits at once.
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // SAFETY: PANICKING is only accessed here, by value, with no reference kept.
    let again = unsafe { core::mem::replace(&mut *PANICKING.as_ptr(), true) };
    if again {
        mmio_write(DONE, EXIT_PANIC);
        loop {
            core::hint::spin_loop();
        }
    }
    let message = info.message();
    if console::pending() != 0 {
        console::write_str("\n");
    }
    match info.location() {
        Some(loc) => {
            crate::println!("PANIC: {loc}: {message}");
            fail("panic", format_args!("{message} (at {loc})"));
        }
        None => {
            crate::println!("PANIC: {message}");
            fail("panic", message);
        }
    }
    crate::exit(EXIT_PANIC)
}

/// The unwinding personality routine. Never called: panics abort. The precompiled `core`
/// refers to it from its unwind tables, which builds without LTO (e.g. the dev profile)
/// link in; LTO builds drop the reference.
#[no_mangle]
pub extern "C" fn rust_eh_personality() -> ! {
    mmio_write(DONE, EXIT_PANIC);
    loop {
        core::hint::spin_loop();
    }
}
