//! Samples: `u64` values the host collects in order (e.g. per-iteration TSC deltas).
//!
//! Samples are buffered in guest memory and handed to the VMM with a [`SampleDesc`] written
//! to [`pageflip_abi::mmio::SAMPLES`] when the buffer is full and when the guest exits; the
//! VMM appends them to the VM's samples.

use pageflip_abi::mmio::SAMPLES;
use pageflip_abi::SampleDesc;

use crate::global::Global;
use crate::mmio::mmio_write;

/// Samples buffered before a flush (64 Ki samples, 512 KiB of the image's bss).
pub const CAPACITY: usize = 64 * 1024;

const _: () = assert!(CAPACITY as u64 <= pageflip_abi::mmio::SAMPLES_MAX);

struct Buffer {
    values: [u64; CAPACITY],
    len: usize,
}

static BUFFER: Global<Buffer> = Global::new(Buffer {
    values: [0; CAPACITY],
    len: 0,
});

/// Appends `value` to the samples; flushes them when the buffer is full.
#[inline]
pub fn sample(value: u64) {
    // SAFETY: the only references to BUFFER are taken here and in `flush_samples`, each for
    // the length of the call, which calls nothing that could reach BUFFER again.
    let buf = unsafe { &mut *BUFFER.as_ptr() };
    buf.values[buf.len] = value;
    buf.len += 1;
    if buf.len == CAPACITY {
        flush_buffer(buf);
    }
}

/// Hands the buffered samples, if any, to the VMM (the runtime does this at exit).
pub fn flush_samples() {
    // SAFETY: see `sample`.
    let buf = unsafe { &mut *BUFFER.as_ptr() };
    flush_buffer(buf);
}

#[inline(never)]
fn flush_buffer(buf: &mut Buffer) {
    if buf.len == 0 {
        return;
    }
    // Guest virtual address == guest physical address (identity map).
    let desc = SampleDesc {
        gpa: buf.values.as_ptr() as u64,
        count: buf.len as u64,
    };
    // `mmio_write` orders the stores to the samples and `desc` before the exit; the VMM
    // copies the samples out during the exit, so the buffer may be reused at once.
    mmio_write(SAMPLES, &desc as *const SampleDesc as u64);
    buf.len = 0;
}
