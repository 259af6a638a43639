//! One run: check the config and images, create the VMs, run their vCPU threads under a
//! watchdog, stop them on failure if asked, and assemble the result.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::Kvm;
use pageflip_abi::PAGE_SIZE;
use pageflip_interface::{
    exit, RunConfig, RunOutcome, RunResult, Summary, VmResult, VmmIdentity, INTERFACE_VERSION,
};
use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

use crate::control::{RunBarrier, StopFlag, StopReason};
use crate::elf::{GuestImage, ImageError};
use crate::host;
use crate::inject::Injected;
use crate::memory::{create_huge_memfd, create_memfd, MemoryError};
use crate::seccomp::{Confinement, InstallError, ThreadKind};
use crate::transport::{plan, RunMemory, StartError};
use crate::vcpu::{self, VcpuContext, VmOutcome};
use crate::vm::{Vm, VmSetupError, VmSpec};

/// Name of this VMM in results.
pub const VMM_NAME: &str = "pageflip-reference-vmm";

/// How often stopped vCPU threads are kicked until they notice.
const KICK_INTERVAL: Duration = Duration::from_millis(10);

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A guest image is unreadable or unusable.
    #[error("vms[{vm}]: {source}")]
    Image {
        /// Index of the VM.
        vm: usize,
        /// What is wrong.
        source: ImageError,
    },
    /// A CPU to pin to that this process may not use.
    #[error("vms[{vm}].cpu = {cpu}: not a CPU this process may run on (allowed: {allowed:?})")]
    Cpu {
        /// Index of the VM.
        vm: usize,
        /// The CPU asked for.
        cpu: usize,
        /// The CPUs allowed.
        allowed: Vec<usize>,
    },
    /// /dev/kvm is missing.
    #[error("no /dev/kvm on this host: load kvm_intel or kvm_amd (or run on a machine with virtualization enabled)")]
    NoKvm,
    /// /dev/kvm may not be opened by this user.
    #[error("permission denied opening /dev/kvm: run as root or add your user to the kvm group")]
    KvmPermission,
    /// /dev/kvm failed otherwise.
    #[error("cannot use /dev/kvm: {0}")]
    Kvm(#[source] kvm_ioctls::Error),
    /// The host lacks the huge pages the run needs (`remap-huge`).
    #[error("{0}")]
    HugePages(String),
    /// A VM could not be set up.
    #[error("setting up vms[{vm}] failed: {source}")]
    Setup {
        /// Index of the VM.
        vm: usize,
        /// What failed.
        source: VmSetupError,
    },
    /// A thread could not be started or the signal handler not installed.
    #[error("starting the vCPU threads failed: {0}")]
    Threads(String),
    /// The main thread could not enter its seccomp filter.
    #[error(transparent)]
    Seccomp(InstallError),
}

impl RunError {
    /// The process exit code for this error (`docs/vmm-interface.md`).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Image { .. } | RunError::Cpu { .. } => exit::BAD_INPUT,
            RunError::NoKvm
            | RunError::KvmPermission
            | RunError::Kvm(_)
            | RunError::HugePages(_) => exit::HOST,
            RunError::Setup { .. } | RunError::Threads(_) | RunError::Seccomp(_) => exit::INTERNAL,
        }
    }
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

fn open_kvm() -> Result<Kvm, RunError> {
    Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT | libc::ENXIO | libc::ENODEV => RunError::NoKvm,
        libc::EACCES | libc::EPERM => RunError::KvmPermission,
        _ => RunError::Kvm(e),
    })
}

/// Carries out the run `config`; `started` is when the VMM process started (for boot times).
/// `injected` is what the command line injects (nothing in normal runs). No thread is
/// confined by seccomp: the run may share its process with anything (tests, tools).
pub fn run(
    config: &RunConfig,
    started: Instant,
    injected: Injected,
) -> Result<RunResult, RunError> {
    run_confined(config, started, injected, &Confinement::off())
}

/// [`run`], with every thread of the run confined by `confinement`: the backend and vCPU
/// threads enter their filters as they start, the calling (main) thread once every thread
/// has started, before the watchdog (`ARCHITECTURE.md`, "Seccomp"). The calling thread stays
/// confined after the run: only a process that does nothing else afterwards (the command
/// line) may call this with filters on.
pub fn run_confined(
    config: &RunConfig,
    started: Instant,
    injected: Injected,
    confinement: &Confinement,
) -> Result<RunResult, RunError> {
    // Everything the user can get wrong is checked before any VM exists.
    let allowed = host::allowed_cpus();
    for (i, vm) in config.vms.iter().enumerate() {
        if let Some(cpu) = vm.cpu.filter(|c| !allowed.contains(c)) {
            return Err(RunError::Cpu {
                vm: i,
                cpu,
                allowed,
            });
        }
    }
    let images = config
        .vms
        .iter()
        .enumerate()
        .map(|(i, vm)| {
            GuestImage::open(&PathBuf::from(&vm.image), vm.memory_mib << 20)
                .map_err(|source| RunError::Image { vm: i, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let kvm = open_kvm()?;
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(RunError::Kvm)?;

    let n = config.vms.len();
    let setup = plan::from_config(&config.transport, n as u32, injected, config.pre_fault)
        .map_err(|source| RunError::Setup { vm: 0, source })?;
    // One memfd for the run: every VM's memory is a range of it, then the free pool.
    let sizes: Vec<u64> = config.vms.iter().map(|v| v.memory_mib << 20).collect();
    let offsets: Vec<u64> = sizes
        .iter()
        .scan(0, |at, s| {
            let o = *at;
            *at += s;
            Some(o)
        })
        .collect();
    let vm_bytes: u64 = sizes.iter().sum();
    let pool_pages = setup.pool_pages();
    let memfd_bytes = vm_bytes + u64::from(pool_pages) * PAGE_SIZE;
    let memfd = if setup.huge_pages() {
        create_huge_memfd("pool", memfd_bytes)
    } else {
        create_memfd("pool", memfd_bytes)
    }
    .map_err(|e| match e {
        e @ MemoryError::HugePages { .. } => RunError::HugePages(e.to_string()),
        e => RunError::Setup {
            vm: 0,
            source: e.into(),
        },
    })?;
    let mut vms = Vec::with_capacity(n);
    for (i, (vm, image)) in config.vms.iter().zip(&images).enumerate() {
        let spec = VmSpec {
            id: i as u32,
            name: config.vm_name(i),
            mem_size: vm.memory_mib << 20,
            image,
            peers: (0..n as u32).filter(|&p| p != i as u32).collect(),
            num_vms: n as u32,
            params: &vm.params,
            memfd: memfd.clone(),
            memfd_offset: offsets[i],
            transport: setup.boot_kind(),
            memory: setup.vm_memory(i as u32),
        };
        vms.push(
            Vm::create(&kvm, &cpuid, &spec).map_err(|source| RunError::Setup { vm: i, source })?,
        );
    }
    let tsc_khz = vms.iter().find_map(|v| v.tsc_khz);
    let names: Vec<String> = vms.iter().map(|v| v.name.clone()).collect();
    register_signal_handler(SIGRTMIN(), kick_handler)
        .map_err(|e| RunError::Threads(format!("installing the kick signal handler: {e}")))?;
    let transport = setup
        .start(&RunMemory {
            vms: &vms,
            sizes: &sizes,
            memfd: &memfd,
            confinement,
        })
        .map_err(|e| match e {
            StartError::Setup { vm, source } => RunError::Setup { vm, source },
            e => RunError::Threads(e.to_string()),
        })?;

    let barrier = Arc::new(RunBarrier::new(n));
    let stops: Vec<Arc<StopFlag>> = (0..n).map(|_| Arc::new(StopFlag::default())).collect();
    let (tx, rx) = mpsc::channel::<(usize, bool)>();
    let mut threads: Vec<Option<JoinHandle<VmOutcome>>> = Vec::with_capacity(n);
    for (i, vm) in vms.into_iter().enumerate() {
        let ctx = VcpuContext {
            index: i,
            stop: stops[i].clone(),
            barrier: barrier.clone(),
            transport: transport.clone(),
            confinement: confinement.clone(),
        };
        let tx = tx.clone();
        let cpu = config.vms[i].cpu;
        let handle = std::thread::Builder::new()
            .name(format!("vcpu-{}", vm.name))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = host::pin_current_thread(cpu) {
                        log::warn!("{}: pinning to CPU {cpu} failed: {e}", vm.name);
                    }
                }
                let outcome = vcpu::run(vm, ctx);
                let _ = tx.send((i, !outcome.status.is_success()));
                outcome
            });
        match handle {
            Ok(h) => threads.push(Some(h)),
            Err(e) => {
                // Stop what already runs before reporting.
                for s in &stops {
                    s.request(StopReason::PeerFailed);
                }
                stop_all(&mut threads, &rx, &mut vec![false; n]);
                transport.stop();
                return Err(RunError::Threads(e.to_string()));
            }
        }
    }
    drop(tx);
    // What the result needs from files, read before the main thread gives up opening them.
    let host_info = host::host_info(tsc_khz);
    if let Err(e) = confinement.enter(ThreadKind::Main) {
        for s in &stops {
            s.request(StopReason::PeerFailed);
        }
        stop_all(&mut threads, &rx, &mut vec![false; n]);
        for t in threads.iter_mut().filter_map(Option::take) {
            let _ = t.join();
        }
        transport.stop();
        return Err(RunError::Seccomp(e));
    }

    // The watchdog: wait for the VMs until the deadline.
    let deadline = Instant::now() + Duration::from_millis(config.timeout_ms);
    let mut finished = vec![false; n];
    let mut outcome = RunOutcome::Completed;
    while finished.iter().any(|f| !f) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, failed)) => {
                finished[i] = true;
                if failed && config.stop_on_failure {
                    for (j, s) in stops.iter().enumerate() {
                        if !finished[j] {
                            s.request(StopReason::PeerFailed);
                        }
                    }
                    stop_all(&mut threads, &rx, &mut finished);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                outcome = RunOutcome::Timeout;
                log::warn!(
                    "watchdog: the run exceeded {} ms, stopping it",
                    config.timeout_ms
                );
                for s in &stops {
                    s.request(StopReason::Timeout);
                }
                stop_all(&mut threads, &rx, &mut finished);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }

    let mut results = Vec::with_capacity(n);
    let mut panicked = None;
    for (i, t) in threads.iter_mut().enumerate() {
        match t.take().expect("every thread is joined once").join() {
            Ok(out) => results.push(vm_result(i as u32, &names[i], out, started)),
            Err(_) => panicked = Some(i),
        }
    }
    // Every vCPU has stopped: no more notifications can come.
    transport.stop();
    if let Some(i) = panicked {
        return Err(RunError::Threads(format!(
            "the vCPU thread of {} panicked",
            names[i]
        )));
    }
    for (i, r) in results.iter_mut().enumerate() {
        let log = transport.take_guest_errors(i);
        r.guest_errors.extend(log.list);
        r.guest_errors_total += log.total;
    }
    let transport = transport.report();
    Ok(RunResult {
        version: INTERFACE_VERSION,
        vmm: VmmIdentity {
            name: VMM_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        host: host_info,
        outcome,
        wall_us: started.elapsed().as_micros() as u64,
        vms: results,
        transport,
    })
}

/// Kicks every unfinished vCPU thread out of KVM_RUN until each has reported its end.
fn stop_all(
    threads: &mut [Option<JoinHandle<VmOutcome>>],
    rx: &mpsc::Receiver<(usize, bool)>,
    finished: &mut [bool],
) {
    while finished.iter().take(threads.len()).any(|f| !f) {
        for (i, t) in threads.iter().enumerate() {
            if let (Some(h), false) = (t, finished[i]) {
                // The thread may be between its stop check and KVM_RUN: kick until it ends.
                let _ = h.kill(SIGRTMIN());
            }
        }
        match rx.recv_timeout(KICK_INTERVAL) {
            Ok((i, _)) => finished[i] = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
}

fn micros_since(started: Instant, t: Option<Instant>) -> Option<u64> {
    t.map(|t| t.saturating_duration_since(started).as_micros() as u64)
}

fn vm_result(id: u32, name: &str, out: VmOutcome, started: Instant) -> VmResult {
    let d = out.device;
    VmResult {
        id,
        name: name.into(),
        status: out.status,
        death: out.death,
        summary: Summary::of(&d.records),
        console: d.console,
        records: d.records,
        samples: d.samples,
        doorbells: d.doorbells,
        guest_errors: d.guest_errors.list,
        guest_errors_total: d.guest_errors.total,
        boot_us: micros_since(started, d.first_access),
        first_record_us: micros_since(started, d.first_record),
        stats: out.stats,
    }
}
