//! The sampler: decodes the raw records of the by-reason tracepoints from their per-CPU ring
//! buffers and counts them by reason and by process, on a thread that drains while a run goes
//! on.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use perf_event::Sampler;

use std::borrow::Cow;

use super::format::{EventFormat, FormatError, FormatField};
use super::reasons::{kvm_exit_reason, userspace_exit_reason};
use super::{lock, ReasonCounts, KVM_EXIT};

/// Bytes of ring buffer per CPU for a sampled tracepoint (a power of two; plus one page of
/// header). A `kvm_userspace_exit` sample takes 40 bytes, a `kvm_exit` sample 96.
pub(super) const RING_BYTES: usize = 256 * 1024;
/// The drain thread is woken when this much of a ring buffer is used.
pub(super) const WAKEUP_BYTES: usize = RING_BYTES / 4;
/// How long the drain thread waits between looks at its stop flag.
pub(super) const POLL_MS: i32 = 10;

/// How the raw records of a by-reason tracepoint are decoded.
#[derive(Clone, Debug)]
pub(super) enum Decoder {
    KvmExit {
        exit_reason: FormatField,
        isa: FormatField,
    },
    UserspaceExit {
        reason: FormatField,
        errno: FormatField,
    },
}

impl Decoder {
    /// The decoder for `tracepoint`, one of those [`has_reasons`] is true of.
    pub(super) fn for_tracepoint(
        tracepoint: &str,
        format: &EventFormat,
    ) -> Result<Decoder, FormatError> {
        if tracepoint == KVM_EXIT {
            Ok(Decoder::KvmExit {
                exit_reason: format.int_field("exit_reason")?,
                isa: format.int_field("isa")?,
            })
        } else {
            Ok(Decoder::UserspaceExit {
                reason: format.int_field("reason")?,
                errno: format.int_field("errno")?,
            })
        }
    }

    /// The reason of one raw record, `None` if it is too short.
    pub(super) fn reason(&self, raw: &[u8]) -> Option<Cow<'static, str>> {
        Some(match self {
            Decoder::KvmExit { exit_reason, isa } => {
                kvm_exit_reason(isa.read(raw)? as u32, exit_reason.read(raw)? as u32)
            }
            Decoder::UserspaceExit { reason, errno } => {
                userspace_exit_reason(reason.read(raw)? as u32, errno.read(raw)? as i32)
            }
        })
    }
}

/// A by-reason tracepoint's samplers (one per CPU) and what they gave so far.
pub(super) struct Sampled {
    pub(super) point: usize,
    pub(super) decoder: Decoder,
    pub(super) samplers: Vec<(usize, Sampler)>,
    pub(super) tally: ReasonCounts,
}

impl Sampled {
    /// Reads every record in the ring buffers.
    pub(super) fn drain(&mut self) {
        for (_, sampler) in &mut self.samplers {
            while let Some(record) = sampler.next_record() {
                match record.parse_record() {
                    Ok(perf_event::data::Record::Sample(sample)) => {
                        match sample.raw().and_then(|raw| self.decoder.reason(raw)) {
                            Some(reason) => {
                                bump(&mut self.tally.reasons, &reason);
                                let process = self
                                    .tally
                                    .by_process
                                    .entry(sample.pid().unwrap_or(0))
                                    .or_default();
                                bump(process, &reason);
                            }
                            None => self.tally.lost += 1,
                        }
                    }
                    Ok(perf_event::data::Record::Lost(lost)) => self.tally.lost += lost.lost,
                    Ok(_) => {}
                    Err(_) => self.tally.lost += 1,
                }
            }
        }
    }
}

pub(super) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// The drain thread: empties the ring buffers whenever one of `fds` is a quarter full (and
/// every [`POLL_MS`]) until told to stop.
pub(super) fn drain_until(sampled: &Mutex<Vec<Sampled>>, fds: Vec<RawFd>, stop: &AtomicBool) {
    let mut pollfds: Vec<libc::pollfd> = fds
        .into_iter()
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Acquire) {
        for s in lock(sampled).iter_mut() {
            s.drain();
        }
        // SAFETY: `pollfds` is a valid, exclusively borrowed array of `pollfds.len()` pollfds.
        // Their descriptors are the samplers', which stay open while this thread runs: they
        // are dropped only with the `Tracepoints`, which stops and joins this thread first.
        // The result is not needed: every buffer is drained after the call either way.
        unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, POLL_MS) };
    }
}
