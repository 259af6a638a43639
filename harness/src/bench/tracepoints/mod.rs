//! Host perf tracepoint counts around one benchmark run: how often `kvm:kvm_exit`,
//! `kvm:kvm_userspace_exit`, `tlb:tlb_flush` (or any other `subsystem:event`) fired, and for the
//! KVM exit tracepoints by exit reason.
//!
//! The counters are **system-wide and host-wide**: one perf event per online CPU with no pid
//! (`pid = -1`), because the VMM is a child process that creates its vCPU threads after it is
//! spawned. The runner runs one VMM at a time, so over a run the counts are that VMM's plus
//! whatever else the host did meanwhile (another VM, the kernel's own TLB flushes). Where it
//! matters, [`ReasonCounts::by_process`] separates the exits of each process.
//!
//! [`Tracepoints::open`] never fails as a whole: a tracepoint that cannot be opened is kept
//! with why ([`TracepointState::Unavailable`]: not root, tracefs not mounted, no such event on
//! this kernel). [`Tracepoints::start`] and [`Tracepoints::stop`] bracket one run and give a
//! [`TracepointCounts`]; [`Tracepoints::states`] says over the whole session whether each
//! tracepoint fired at all, for [`pageflip_results::Host::tracepoints`]: under kvm_pvm
//! `kvm:kvm_exit` never fires, and is reported [`TracepointState::Silent`], not 0.
//!
//! By reason: `kvm:kvm_exit` (field `exit_reason`, with `isa` 1 = VMX, 2 = SVM) and
//! `kvm:kvm_userspace_exit` (field `reason`, a `KVM_EXIT_*` number, and `errno`) are sampled
//! with period 1 and `PERF_SAMPLE_RAW` into a ring buffer per CPU, drained by a thread while
//! the run goes on; each raw record is decoded with the field offsets and sizes of the event's
//! `format` file in tracefs ([`EventFormat`]). Records the kernel drops (ring buffer full) are
//! counted in [`ReasonCounts::lost`] and make the breakdown incomplete; the totals come from
//! the counters themselves and are exact either way.
//!
//! Needs: root (or `CAP_PERFMON` with raw tracepoint access) and tracefs mounted
//! (`mount -t tracefs nodev /sys/kernel/tracing`; `/sys/kernel/debug/tracing` is tried too).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use perf_event::Counter;
use serde::Serialize;

use pageflip_results::TracepointState;

mod discovery;
mod format;
mod reasons;
mod sampler;

use discovery::{open_one, Opened};
pub use discovery::{parse_cpu_list, OpenError, MOUNT_TRACEFS, TRACEFS_ROOTS};
pub use format::{EventFormat, FormatError, FormatField};
pub use reasons::{has_reasons, kvm_exit_reason, userspace_exit_reason, ISA_SVM, ISA_VMX};
use sampler::{drain_until, Sampled};

/// Every VM exit, with its hardware exit reason (VMX or SVM). Not fired by kvm_pvm.
pub const KVM_EXIT: &str = "kvm:kvm_exit";
/// Every return of `KVM_RUN` to userspace, with its `KVM_EXIT_*` reason.
pub const KVM_USERSPACE_EXIT: &str = "kvm:kvm_userspace_exit";
/// Every host TLB flush (all CPUs, every cause, not only KVM's).
pub const TLB_FLUSH: &str = "tlb:tlb_flush";
/// The tracepoints the benchmark runner opens.
pub const RUNNER_TRACEPOINTS: &[&str] = &[KVM_EXIT, KVM_USERSPACE_EXIT, TLB_FLUSH];

/// Why counting around a run failed.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    /// [`Tracepoints::start`] while counting already.
    #[error("the tracepoint counters are running already")]
    AlreadyStarted,
    /// [`Tracepoints::stop`] without a [`Tracepoints::start`].
    #[error("the tracepoint counters were not started")]
    NotStarted,
    /// A counter could not be reset, enabled, disabled or read.
    #[error("{tracepoint} on CPU {cpu}: cannot {what} the counter")]
    Counter {
        /// The tracepoint.
        tracepoint: String,
        /// The CPU.
        cpu: usize,
        /// `reset`, `enable`, `disable` or `read`.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The thread draining the sample buffers could not be started.
    #[error("cannot start the thread draining the tracepoint sample buffers")]
    Spawn(#[source] io::Error),
    /// The thread draining the sample buffers panicked.
    #[error("the thread draining the tracepoint sample buffers panicked")]
    Drainer,
}

/// The counts of one run (between [`Tracepoints::start`] and [`Tracepoints::stop`]): plain
/// data for the results file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TracepointCounts {
    /// Events per tracepoint that could be opened, summed over every CPU.
    pub totals: BTreeMap<String, u64>,
    /// By reason, for the tracepoints that have one ([`KVM_EXIT`], [`KVM_USERSPACE_EXIT`]).
    pub by_reason: BTreeMap<String, ReasonCounts>,
    /// Tracepoints that could not be opened, with why (absent from `totals`).
    pub unavailable: BTreeMap<String, String>,
    /// Tracepoints that have a total but no by-reason breakdown, with why.
    pub by_reason_unavailable: BTreeMap<String, String>,
}

impl TracepointCounts {
    /// The total of `tracepoint`, if it was counted.
    pub fn total(&self, tracepoint: &str) -> Option<u64> {
        self.totals.get(tracepoint).copied()
    }
}

/// One tracepoint's events by reason over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReasonCounts {
    /// Events by reason name (`mmio`, `io`, `ept_violation`, `npf`, ...; see
    /// [`kvm_exit_reason`] and [`userspace_exit_reason`]).
    pub reasons: BTreeMap<String, u64>,
    /// The same by process (the thread group id of the thread the event fired in).
    pub by_process: BTreeMap<u32, BTreeMap<String, u64>>,
    /// Records the kernel dropped (ring buffer full), plus records that could not be decoded.
    pub lost: u64,
    /// True if every event of the total is in `reasons` (nothing lost, the sums agree).
    pub complete: bool,
}

/// What one tracepoint is.
enum State {
    Unavailable(String),
    /// Counted by plain counters, one per CPU; with why it has no reasons, if it should.
    Counting(Vec<(usize, Counter)>, Option<String>),
    /// Counted and sampled: its samplers are in [`Tracepoints::sampled`].
    Sampled,
}

struct Point {
    name: String,
    state: State,
    session_total: u64,
}

/// The thread that drains the sample buffers during a run.
struct Drainer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Host perf tracepoints, counted system-wide (every CPU, every process) around runs.
pub struct Tracepoints {
    points: Vec<Point>,
    /// The sampled tracepoints, shared with the drain thread during a run.
    sampled: Arc<Mutex<Vec<Sampled>>>,
    /// Between `start` and `stop`.
    running: bool,
    drainer: Option<Drainer>,
}

impl std::fmt::Debug for Tracepoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.states().iter().map(|(k, v)| (k.clone(), v.clone())))
            .finish()
    }
}

impl Tracepoints {
    /// Opens the tracepoints `names` (`subsystem:event`) on every online CPU, disabled. One
    /// that cannot be opened is kept as [`TracepointState::Unavailable`] with why.
    pub fn open(names: &[&str]) -> Tracepoints {
        let roots: Vec<PathBuf> = TRACEFS_ROOTS.iter().map(PathBuf::from).collect();
        Tracepoints::open_in(&roots, names)
    }

    /// [`Tracepoints::open`] with tracefs looked for at `tracefs_roots` instead of
    /// [`TRACEFS_ROOTS`].
    pub fn open_in(tracefs_roots: &[PathBuf], names: &[&str]) -> Tracepoints {
        let mut points = Vec::new();
        let mut sampled = Vec::new();
        for &name in names {
            let state = match open_one(tracefs_roots, name) {
                Err(e) => State::Unavailable(e.to_string()),
                Ok(Opened::Counting(counters, why)) => State::Counting(counters, why),
                Ok(Opened::Sampled(decoder, samplers)) => {
                    sampled.push(Sampled {
                        point: points.len(),
                        decoder,
                        samplers,
                        tally: ReasonCounts::default(),
                    });
                    State::Sampled
                }
            };
            points.push(Point {
                name: name.to_string(),
                state,
                session_total: 0,
            });
        }
        Tracepoints {
            points,
            sampled: Arc::new(Mutex::new(sampled)),
            running: false,
            drainer: None,
        }
    }

    /// Each tracepoint's state over the session so far: [`TracepointState::Fired`] if it
    /// counted at least one event in any run, [`TracepointState::Silent`] if not,
    /// [`TracepointState::Unavailable`] if it could not be opened.
    pub fn states(&self) -> BTreeMap<String, TracepointState> {
        self.points
            .iter()
            .map(|p| {
                let state = match &p.state {
                    State::Unavailable(reason) => TracepointState::Unavailable {
                        reason: reason.clone(),
                    },
                    _ if p.session_total > 0 => TracepointState::Fired,
                    _ => TracepointState::Silent,
                };
                (p.name.clone(), state)
            })
            .collect()
    }

    /// Resets and enables every counter: the start of one run.
    pub fn start(&mut self) -> Result<(), CountError> {
        if self.running {
            return Err(CountError::AlreadyStarted);
        }
        let mut fds = Vec::new();
        {
            let mut sampled = lock(&self.sampled);
            for s in sampled.iter_mut() {
                s.tally = ReasonCounts::default();
                let name = &self.points[s.point].name;
                for (cpu, sampler) in &mut s.samplers {
                    // Records of an earlier window left in the buffer (none normally: `stop`
                    // drains after disabling) are not this run's.
                    while sampler.next_record().is_some() {}
                    reset_enable(name, *cpu, sampler)?;
                    fds.push(sampler.as_raw_fd());
                }
            }
        }
        for p in &mut self.points {
            if let State::Counting(counters, _) = &mut p.state {
                for (cpu, counter) in counters {
                    reset_enable(&p.name, *cpu, counter)?;
                }
            }
        }
        self.running = true;
        if !fds.is_empty() {
            let stop = Arc::new(AtomicBool::new(false));
            let (flag, sampled) = (Arc::clone(&stop), Arc::clone(&self.sampled));
            let handle = std::thread::Builder::new()
                .name("tracepoint-drain".into())
                .spawn(move || drain_until(&sampled, fds, &flag))
                .map_err(CountError::Spawn)?;
            self.drainer = Some(Drainer { stop, handle });
        }
        Ok(())
    }

    /// Disables every counter and reads it: the counts since [`Tracepoints::start`].
    pub fn stop(&mut self) -> Result<TracepointCounts, CountError> {
        if !self.running {
            return Err(CountError::NotStarted);
        }
        self.running = false;
        let drained = self.stop_drainer();
        let mut counts = TracepointCounts::default();
        let mut first_error = drained.err();
        for p in &mut self.points {
            match &mut p.state {
                State::Unavailable(why) => {
                    counts.unavailable.insert(p.name.clone(), why.clone());
                }
                State::Counting(counters, why) => {
                    match disable_read(&p.name, counters.iter_mut().map(|(c, x)| (*c, x))) {
                        Ok(total) => {
                            p.session_total += total;
                            counts.totals.insert(p.name.clone(), total);
                            if let Some(why) = why {
                                counts
                                    .by_reason_unavailable
                                    .insert(p.name.clone(), why.clone());
                            }
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                State::Sampled => {}
            }
        }
        for s in lock(&self.sampled).iter_mut() {
            let p = &mut self.points[s.point];
            let samplers = s.samplers.iter_mut();
            match disable_read(&p.name, samplers.map(|(cpu, x)| (*cpu, &mut **x))) {
                Ok(total) => {
                    // Every record of the run is in the buffers once the samplers are off.
                    s.drain();
                    p.session_total += total;
                    counts.totals.insert(p.name.clone(), total);
                    let decoded: u64 = s.tally.reasons.values().sum();
                    s.tally.complete = s.tally.lost == 0 && decoded == total;
                    counts
                        .by_reason
                        .insert(p.name.clone(), std::mem::take(&mut s.tally));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(counts),
        }
    }

    /// Stops and joins the drain thread, if it runs.
    fn stop_drainer(&mut self) -> Result<(), CountError> {
        match self.drainer.take() {
            Some(drainer) => {
                drainer.stop.store(true, Ordering::Release);
                drainer.handle.join().map_err(|_| CountError::Drainer)
            }
            None => Ok(()),
        }
    }
}

impl Drop for Tracepoints {
    fn drop(&mut self) {
        // A panic of the thread has been reported on stderr; the counters close either way.
        let _ = self.stop_drainer();
    }
}

/// The sampled tracepoints; a panic of the drain thread leaves them usable (their tallies
/// are counts, never half-updated structures).
fn lock(sampled: &Mutex<Vec<Sampled>>) -> MutexGuard<'_, Vec<Sampled>> {
    sampled
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The error of operation `what` on the counter of tracepoint `name` on `cpu`.
fn counter_error<'a>(
    name: &'a str,
    cpu: usize,
    what: &'static str,
) -> impl FnOnce(io::Error) -> CountError + 'a {
    move |source| CountError::Counter {
        tracepoint: name.to_string(),
        cpu,
        what,
        source,
    }
}

fn reset_enable(name: &str, cpu: usize, counter: &mut Counter) -> Result<(), CountError> {
    let err = |what| counter_error(name, cpu, what);
    counter.reset().map_err(err("reset"))?;
    counter.enable().map_err(err("enable"))
}

fn disable_read<'a>(
    name: &str,
    counters: impl Iterator<Item = (usize, &'a mut Counter)>,
) -> Result<u64, CountError> {
    let mut total = 0;
    for (cpu, counter) in counters {
        let err = |what| counter_error(name, cpu, what);
        counter.disable().map_err(err("disable"))?;
        total += counter.read().map_err(err("read"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::discovery::*;
    use super::reasons::{SVM_EXIT_CODES, VMX_EXIT_REASONS};
    use super::sampler::*;
    use super::*;

    /// `format` files copied verbatim from this project's test host (kernel 6.18, kvm_pvm).
    const KVM_EXIT_FORMAT: &str = include_str!("fixtures/kvm_exit.format");
    const USERSPACE_EXIT_FORMAT: &str = include_str!("fixtures/kvm_userspace_exit.format");
    const TLB_FLUSH_FORMAT: &str = include_str!("fixtures/tlb_flush.format");
    const SCHED_PROCESS_EXEC_FORMAT: &str = include_str!("fixtures/sched_process_exec.format");

    fn field(format: &EventFormat, name: &str) -> (usize, usize, bool) {
        let f = format
            .field(name)
            .unwrap_or_else(|| panic!("no field {name}"));
        (f.offset, f.size, f.signed)
    }

    #[test]
    fn parses_the_kvm_exit_format() {
        let f = EventFormat::parse(KVM_EXIT_FORMAT).unwrap();
        assert_eq!(f.name, "kvm_exit");
        assert_eq!(f.id, 103);
        assert_eq!(f.fields.len(), 13);
        assert_eq!(field(&f, "common_type"), (0, 2, false));
        assert_eq!(field(&f, "common_pid"), (4, 4, true));
        assert_eq!(field(&f, "exit_reason"), (8, 4, false));
        assert_eq!(field(&f, "guest_rip"), (16, 8, false));
        assert_eq!(field(&f, "isa"), (24, 4, false));
        assert_eq!(field(&f, "requests"), (64, 8, false));
        assert_eq!(
            f.field("exit_reason").unwrap().decl,
            "unsigned int exit_reason"
        );
        assert!(f.field("REC").is_none());
    }

    #[test]
    fn parses_the_userspace_exit_and_tlb_flush_formats() {
        let f = EventFormat::parse(USERSPACE_EXIT_FORMAT).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("kvm_userspace_exit", 42));
        assert_eq!(field(&f, "reason"), (8, 4, false));
        assert_eq!(field(&f, "errno"), (12, 4, true));
        let f = EventFormat::parse(TLB_FLUSH_FORMAT).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("tlb_flush", 188));
        assert_eq!(field(&f, "reason"), (8, 4, true));
        assert_eq!(field(&f, "pages"), (16, 8, false));
    }

    #[test]
    fn parses_array_and_data_loc_fields_and_rejects_bad_files() {
        let f = EventFormat::parse(SCHED_PROCESS_EXEC_FORMAT).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sched_process_exec", 365));
        assert_eq!(field(&f, "filename"), (8, 4, false));
        assert_eq!(
            f.field("filename").unwrap().decl,
            "__data_loc char[] filename"
        );
        assert_eq!(field(&f, "old_pid"), (16, 4, true));
        let f = EventFormat::parse(
            "name: x\nID: 7\nformat:\n\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:1;\n",
        )
        .unwrap();
        assert_eq!(field(&f, "comm"), (8, 16, true));
        assert_eq!(
            f.field("comm").unwrap().read(&[0; 64]),
            None,
            "not an integer"
        );
        let no_size = "name: x\nID: 7\n\tfield:int a;\toffset:8;\tsigned:1;\n";
        assert!(matches!(
            EventFormat::parse(no_size),
            Err(FormatError::BadField(_))
        ));
        let bad_offset = "name: x\nID: 7\n\tfield:int a;\toffset:eight;\tsize:4;\tsigned:1;\n";
        assert!(matches!(
            EventFormat::parse(bad_offset),
            Err(FormatError::BadField(_))
        ));
        assert_eq!(EventFormat::parse("name: x\n"), Err(FormatError::NoId));
        assert_eq!(EventFormat::parse("ID: 3\n"), Err(FormatError::NoName));
        let f = EventFormat::parse(TLB_FLUSH_FORMAT).unwrap();
        assert!(matches!(
            Decoder::for_tracepoint(KVM_USERSPACE_EXIT, &f),
            Err(FormatError::NoField(n)) if n == "errno"
        ));
    }

    #[test]
    fn reads_fields_little_endian_and_sign_extends() {
        let f = EventFormat::parse(USERSPACE_EXIT_FORMAT).unwrap();
        let mut raw = vec![0u8; 16];
        raw[8..12].copy_from_slice(&0xffff_fffeu32.to_le_bytes());
        raw[12..16].copy_from_slice(&(-4i32).to_le_bytes());
        assert_eq!(f.field("reason").unwrap().read(&raw), Some(0xffff_fffe));
        assert_eq!(f.field("errno").unwrap().read(&raw), Some(-4));
        assert_eq!(f.field("errno").unwrap().read(&raw[..15]), None);
        let byte = FormatField {
            name: "b".into(),
            decl: "char b".into(),
            offset: 0,
            size: 1,
            signed: true,
        };
        assert_eq!(byte.read(&[0x80]), Some(-128));
    }

    /// A raw record of `format` with `values` written at their fields.
    fn record(format: &EventFormat, values: &[(&str, u64)]) -> Vec<u8> {
        let mut raw = vec![0u8; 72];
        for (name, v) in values {
            let f = format.field(name).unwrap();
            raw[f.offset..f.offset + f.size].copy_from_slice(&v.to_le_bytes()[..f.size]);
        }
        raw
    }

    #[test]
    fn decodes_raw_records_by_reason() {
        let ue = EventFormat::parse(USERSPACE_EXIT_FORMAT).unwrap();
        let d = Decoder::for_tracepoint(KVM_USERSPACE_EXIT, &ue).unwrap();
        let reason = |values: &[(&str, u64)]| d.reason(&record(&ue, values)).unwrap();
        assert_eq!(reason(&[("reason", 6), ("errno", 0)]), "mmio");
        assert_eq!(reason(&[("reason", 2), ("errno", 0)]), "io");
        assert_eq!(reason(&[("reason", 8), ("errno", 0)]), "shutdown");
        assert_eq!(
            reason(&[("reason", 6), ("errno", (-4i32) as u32 as u64)]),
            "restart"
        );
        assert_eq!(
            reason(&[("reason", 6), ("errno", (-14i32) as u32 as u64)]),
            "error"
        );
        assert_eq!(reason(&[("reason", 999), ("errno", 0)]), "exit_999");
        assert_eq!(d.reason(&[0; 12]), None, "too short");

        let ke = EventFormat::parse(KVM_EXIT_FORMAT).unwrap();
        let d = Decoder::for_tracepoint(KVM_EXIT, &ke).unwrap();
        let reason = |values: &[(&str, u64)]| d.reason(&record(&ke, values)).unwrap();
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 48)]), "ept_violation");
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 49)]), "ept_misconfig");
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 30)]), "io_instruction");
        assert_eq!(
            reason(&[("isa", 1), ("exit_reason", 0x8000_0021)]),
            "failed_vmentry_invalid_state"
        );
        assert_eq!(reason(&[("isa", 1), ("exit_reason", 99)]), "vmx_99");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x400)]), "npf");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x7b)]), "io");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x4e)]), "excp_pf");
        assert_eq!(reason(&[("isa", 2), ("exit_reason", 0x1234)]), "svm_0x1234");
        assert_eq!(reason(&[("isa", 3), ("exit_reason", 5)]), "isa3_5");
    }

    /// `{ value, "NAME" }` pairs of a `__print_symbolic` list.
    fn symbols(list: &str) -> Vec<(i64, String)> {
        list.split('{')
            .skip(1)
            .map(|item| {
                let (value, rest) = item.split_once(',').unwrap();
                let name: String = rest
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .collect::<Vec<_>>()
                    .concat();
                let value = value.trim();
                let n = match value.split_once('+') {
                    Some((a, b)) => parse_c(a) + parse_c(b),
                    None => parse_c(value),
                };
                (n, name)
            })
            .collect()
    }

    fn parse_c(s: &str) -> i64 {
        let s = s.trim();
        match s.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
            None => s.parse().unwrap(),
        }
    }

    /// The kernel's name as this module spells it: lower case, `_` for spaces and dashes,
    /// `PF excp` as `excp_pf`.
    fn normalized(kernel: &str) -> String {
        let lower = kernel.to_lowercase().replace([' ', '-'], "_");
        match lower.strip_suffix("_excp") {
            Some(x) => format!("excp_{x}"),
            None => lower,
        }
    }

    #[test]
    fn the_reason_tables_agree_with_the_kernels_print_formats() {
        let print = KVM_EXIT_FORMAT.split("print fmt:").nth(1).unwrap();
        let vmx = print
            .split("__print_symbolic(REC->exit_reason & 0xffff,")
            .nth(1)
            .unwrap()
            .split(") :")
            .next()
            .unwrap();
        let svm = print
            .split("__print_symbolic(REC->exit_reason,")
            .nth(1)
            .unwrap()
            .split("), (REC")
            .next()
            .unwrap();
        let vmx = symbols(vmx);
        assert_eq!(vmx.len(), VMX_EXIT_REASONS.len());
        for (n, name) in vmx {
            assert_eq!(
                kvm_exit_reason(ISA_VMX, n as u32),
                normalized(&name),
                "VMX {n}"
            );
        }
        let svm = symbols(svm);
        assert_eq!(svm.len(), SVM_EXIT_CODES.len());
        for (n, name) in svm {
            assert_eq!(
                kvm_exit_reason(ISA_SVM, n as u32),
                normalized(&name),
                "SVM {n:#x}"
            );
        }
        let print = USERSPACE_EXIT_FORMAT.split("print fmt:").nth(1).unwrap();
        let list = print.split("__print_symbolic(REC->reason,").nth(1).unwrap();
        let list = list.split("), REC->errno").next().unwrap();
        let exits = symbols(list);
        assert_eq!(
            exits.len(),
            31,
            "this kernel's tracepoint names KVM_EXIT_ 0 to 30"
        );
        for (n, name) in exits {
            let name = name.strip_prefix("KVM_EXIT_").unwrap().to_lowercase();
            assert_eq!(userspace_exit_reason(n as u32, 0), name, "KVM_EXIT {n}");
        }
        assert_eq!(
            userspace_exit_reason(kvm_bindings::KVM_EXIT_MMIO, 0),
            "mmio"
        );
        assert_eq!(kvm_bindings::KVM_EXIT_MMIO, 6);
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("4-2"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    fn reason_of(t: &Tracepoints, name: &str) -> String {
        match t.states().remove(name) {
            Some(TracepointState::Unavailable { reason }) => reason,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn says_why_a_tracepoint_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let roots = [dir.path().join("tracing"), dir.path().join("debug/tracing")];
        let t = Tracepoints::open_in(&roots, &[KVM_EXIT, "nocolon"]);
        let why = reason_of(&t, KVM_EXIT);
        assert!(why.contains("tracefs is not mounted"), "{why}");
        assert!(why.contains(MOUNT_TRACEFS), "{why}");
        assert!(
            why.contains("debug/tracing/events"),
            "both roots tried: {why}"
        );
        assert!(reason_of(&t, "nocolon").contains("subsystem:event"));

        std::fs::create_dir_all(roots[1].join("events/kvm/kvm_exit")).unwrap();
        std::fs::write(roots[1].join("events/kvm/kvm_exit/id"), "not a number\n").unwrap();
        let mut t = Tracepoints::open_in(&roots, &[KVM_EXIT, "kvm:no_such_event", "a:/b"]);
        let why = reason_of(&t, KVM_EXIT);
        assert!(why.contains("cannot read the tracepoint id"), "{why}");
        let why = reason_of(&t, "kvm:no_such_event");
        assert!(why.contains("no such event on this kernel"), "{why}");
        assert!(
            why.contains("debug/tracing/events/kvm/no_such_event"),
            "{why}"
        );
        assert!(reason_of(&t, "a:/b").contains("not a tracepoint name"));

        // Nothing to count: a run still works and says why each is missing.
        assert!(matches!(t.stop(), Err(CountError::NotStarted)));
        t.start().unwrap();
        assert!(matches!(t.start(), Err(CountError::AlreadyStarted)));
        let counts = t.stop().unwrap();
        assert!(counts.totals.is_empty());
        assert_eq!(counts.unavailable.len(), 3);
        assert_eq!(counts.total(KVM_EXIT), None);
        assert!(counts.unavailable[KVM_EXIT].contains("tracepoint id"));
    }
}
