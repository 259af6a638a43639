//! Discovery: where tracefs is, which CPUs are online, and opening one tracepoint as a counter
//! (and, for the by-reason tracepoints, a sampler) on every CPU, or why it cannot be opened.

use std::io;
use std::path::{Path, PathBuf};

use perf_event::events::Tracepoint;
use perf_event::{Builder, Counter, SampleFlag, Sampler};

use super::format::EventFormat;
use super::reasons::has_reasons;
use super::sampler::{Decoder, RING_BYTES, WAKEUP_BYTES};

/// Where tracefs is looked for, in order.
pub const TRACEFS_ROOTS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/// The command that mounts tracefs where it is looked for first.
pub const MOUNT_TRACEFS: &str = "mount -t tracefs nodev /sys/kernel/tracing";

/// Why a tracepoint could not be opened (the text of [`pageflip_results::TracepointState::Unavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The name is not `subsystem:event`.
    #[error("{0:?} is not a tracepoint name of the form subsystem:event")]
    BadName(String),
    /// No tracefs at any of [`TRACEFS_ROOTS`].
    #[error("tracefs is not mounted (no {tried}): {MOUNT_TRACEFS}")]
    NotMounted {
        /// The `events` directories looked for.
        tried: String,
    },
    /// tracefs is there but may not be read (it is root's only).
    #[error("cannot read {path} (tracefs is readable by root only: run as root): {source}")]
    NotPermitted {
        /// What could not be read.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel has no such tracepoint.
    #[error("no such event on this kernel (no {path})")]
    NoSuchEvent {
        /// The event's directory that is missing.
        path: PathBuf,
    },
    /// The event's `id` file could not be read or parsed.
    #[error("cannot read the tracepoint id from {path}: {why}")]
    BadId {
        /// The `id` file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The online CPUs could not be listed.
    #[error("cannot list the online CPUs from {path}: {why}")]
    Cpus {
        /// The file read.
        path: &'static str,
        /// What was wrong.
        why: String,
    },
    /// `perf_event_open` refused: not root.
    #[error(
        "perf_event_open on CPU {cpu}: permission denied: system-wide tracepoint counters need \
         root (or CAP_PERFMON); /proc/sys/kernel/perf_event_paranoid is {paranoid} ({source})"
    )]
    PerfPermission {
        /// The CPU.
        cpu: usize,
        /// `perf_event_paranoid`, or `unknown`.
        paranoid: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `perf_event_open` failed otherwise.
    #[error("perf_event_open on CPU {cpu}: {source}")]
    Perf {
        /// The CPU.
        cpu: usize,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Parses a kernel CPU list (`0-3,6,8-9`).
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

pub(super) enum Opened {
    Counting(Vec<(usize, Counter)>, Option<String>),
    Sampled(Decoder, Vec<(usize, Sampler)>),
}

/// Finds `name`'s event directory in tracefs.
pub(super) fn event_dir(tracefs_roots: &[PathBuf], name: &str) -> Result<PathBuf, OpenError> {
    let (sys, event) = name
        .split_once(':')
        .filter(|(s, e)| {
            let ok = |x: &str| !x.is_empty() && !x.contains(['/', ':']) && x != "." && x != "..";
            ok(s) && ok(e)
        })
        .ok_or_else(|| OpenError::BadName(name.to_string()))?;
    let mut tried = Vec::new();
    for root in tracefs_roots {
        let events = root.join("events");
        match std::fs::metadata(&events) {
            Ok(m) if m.is_dir() => {
                let dir = events.join(sys).join(event);
                return match std::fs::metadata(&dir) {
                    Ok(_) => Ok(dir),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        Err(OpenError::NotPermitted {
                            path: dir,
                            source: e,
                        })
                    }
                    Err(_) => Err(OpenError::NoSuchEvent { path: dir }),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(OpenError::NotPermitted {
                    path: events,
                    source: e,
                })
            }
            _ => tried.push(events.display().to_string()),
        }
    }
    Err(OpenError::NotMounted {
        tried: tried.join(" or "),
    })
}

pub(super) fn read_file(path: &Path) -> Result<String, OpenError> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => OpenError::NotPermitted {
            path: path.to_path_buf(),
            source: e,
        },
        _ => OpenError::BadId {
            path: path.to_path_buf(),
            why: e.to_string(),
        },
    })
}

pub(super) fn online_cpus() -> Result<Vec<usize>, OpenError> {
    const PATH: &str = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(PATH).map_err(|e| OpenError::Cpus {
        path: PATH,
        why: e.to_string(),
    })?;
    parse_cpu_list(&text).ok_or_else(|| OpenError::Cpus {
        path: PATH,
        why: format!("not a CPU list: {:?}", text.trim()),
    })
}

pub(super) fn perf_error(cpu: usize, source: io::Error) -> OpenError {
    match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => OpenError::PerfPermission {
            cpu,
            paranoid: std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            source,
        },
        _ => OpenError::Perf { cpu, source },
    }
}

pub(super) fn open_one(tracefs_roots: &[PathBuf], name: &str) -> Result<Opened, OpenError> {
    let dir = event_dir(tracefs_roots, name)?;
    let id_path = dir.join("id");
    let id: u64 = read_file(&id_path)?
        .trim()
        .parse()
        .map_err(|e| OpenError::BadId {
            path: id_path.clone(),
            why: format!("{e}"),
        })?;
    let cpus = online_cpus()?;
    let mut builder = Builder::new(Tracepoint::with_id(id));
    // Tracepoints fire in the kernel: counting only user mode (the builder's default) would
    // count nothing.
    builder.any_pid().exclude_kernel(false);
    let counting = |builder: &mut Builder<'_>| {
        cpus.iter()
            .map(|&cpu| {
                builder
                    .one_cpu(cpu)
                    .build()
                    .map(|c| (cpu, c))
                    .map_err(|e| perf_error(cpu, e))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    if !has_reasons(name) {
        return Ok(Opened::Counting(counting(&mut builder)?, None));
    }
    let format_path = dir.join("format");
    let decoder = match std::fs::read_to_string(&format_path)
        .map_err(|e| format!("cannot read {}: {e}", format_path.display()))
        .and_then(|text| {
            EventFormat::parse(&text)
                .and_then(|format| Decoder::for_tracepoint(name, &format))
                .map_err(|e| format!("{}: {e}", format_path.display()))
        }) {
        Ok(decoder) => decoder,
        Err(why) => return Ok(Opened::Counting(counting(&mut builder)?, Some(why))),
    };
    let mut sampling = builder.clone();
    sampling
        .sample_period(1)
        .sample(SampleFlag::RAW | SampleFlag::TID)
        .wakeup_watermark(WAKEUP_BYTES);
    let samplers = cpus
        .iter()
        .map(|&cpu| {
            let counter = sampling
                .one_cpu(cpu)
                .build()
                .map_err(|e| format!("cannot sample raw records: {}", perf_error(cpu, e)))?;
            counter.sampled(RING_BYTES).map(|s| (cpu, s)).map_err(|e| {
                format!("cannot map a {RING_BYTES}-byte ring buffer on CPU {cpu}: {e}")
            })
        })
        .collect::<Result<Vec<_>, String>>();
    match samplers {
        Ok(samplers) => Ok(Opened::Sampled(decoder, samplers)),
        // Sampling raw records may be refused where counting is not (it needs more
        // privilege, and locked memory): count only, and say why there are no reasons.
        Err(why) => Ok(Opened::Counting(counting(&mut builder)?, Some(why))),
    }
}
