//! The vCPU loop of one VM: runs the guest, serves its pageflip MMIO device, hands every other
//! MMIO access and the hook before each exit to the run's [`Transport`], takes the stats
//! snapshots of the measured phase, and reports how the VM ended.

use std::collections::BTreeMap;
use std::sync::Arc;

use kvm_ioctls::VcpuExit;
use pageflip_abi::{mmio, MMIO_BASE, MMIO_SIZE};
use pageflip_interface::{DeathReport, Stats, StatsDelta, VmStatus};

use crate::control::{RunBarrier, StopFlag, StopReason};
use crate::device::{Action, Device};
use crate::kvm_stats::{Snapshot, WELL_KNOWN_VCPU, WELL_KNOWN_VM};
use crate::seccomp::{Confinement, ThreadKind};
use crate::transport::Transport;
use crate::vm::{Vm, VmStats};

/// Console lines kept in a death report.
const DEATH_TAIL_LINES: usize = 10;

/// How one VM ended, with everything its device collected.
#[derive(Debug)]
pub struct VmOutcome {
    /// How the VM ended.
    pub status: VmStatus,
    /// For a VM that died or was stopped: what the VMM saw.
    pub death: Option<DeathReport>,
    /// The VM's device state: console, records, samples, refused requests.
    pub device: Device,
    /// KVM stats.
    pub stats: Stats,
}

#[derive(Debug)]
struct Snapshots {
    vcpu: Snapshot,
    vm: Snapshot,
}

fn snapshot(stats: &VmStats) -> Option<Snapshots> {
    Some(Snapshots {
        vcpu: stats.vcpu.snapshot().ok()?,
        vm: stats.vm.snapshot().ok()?,
    })
}

fn delta(stats: &VmStats, a: &Snapshots, b: &Snapshots) -> StatsDelta {
    StatsDelta {
        vcpu: stats.vcpu.delta(&a.vcpu, &b.vcpu),
        vm: stats.vm.delta(&a.vm, &b.vm),
    }
}

/// Shared handles a vCPU thread needs.
#[derive(Debug, Clone)]
pub struct VcpuContext {
    /// This VM's index in the run.
    pub index: usize,
    /// This VM's stop request.
    pub stop: Arc<StopFlag>,
    /// The run's barrier.
    pub barrier: Arc<RunBarrier>,
    /// The run's transport.
    pub transport: Arc<dyn Transport>,
    /// How the run's threads are confined: this thread enters the vCPU filter first.
    pub confinement: Confinement,
}

fn is_device(addr: u64) -> bool {
    (MMIO_BASE..MMIO_BASE + MMIO_SIZE).contains(&addr)
}

/// Ends of the loop that are not a clean `Done`.
enum Ended {
    Done(u64),
    Died(VmStatus, String),
    Stopped(StopReason),
}

/// Runs the VM until it is done, dies, or is stopped.
pub fn run(mut vm: Vm, ctx: VcpuContext) -> VmOutcome {
    let mut confined = ctx.confinement.enter(ThreadKind::Vcpu).err();
    let transport = ctx.transport.clone();
    let mut device = Device::new(&vm.name, vm.ram.clone(), transport.has_queues());
    // Every exit to the pageflip device runs the transport's hook first (remap IPC drains
    // the VM's send ring), except the IPC doorbell, which drains by its own rule (a batch,
    // an urgent descriptor, or a flush).
    let before_exit = || transport.before_exit(ctx.index);
    let run_start = vm.stats.as_ref().and_then(snapshot);
    let mut phase_start: Option<Snapshots> = None;
    let mut measured: Option<StatsDelta> = None;

    transport.vcpu_started(ctx.index);
    let ended = loop {
        if let Some(e) = confined.take() {
            break Ended::Died(
                VmStatus::VmmError {
                    message: e.to_string(),
                },
                e.to_string(),
            );
        }
        if let Some(reason) = ctx.stop.get() {
            break Ended::Stopped(reason);
        }
        transport.before_entry(ctx.index, &vm.vcpu);
        let exit = match vm.vcpu.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => {
                break Ended::Died(
                    VmStatus::VmmError {
                        message: format!("KVM_RUN failed: {e}"),
                    },
                    format!("KVM_RUN failed: {e}"),
                )
            }
        };
        let action = match exit {
            VcpuExit::MmioWrite(addr, data) if is_device(addr) && data.len() <= 8 => {
                let mut v = [0u8; 8];
                v[..data.len()].copy_from_slice(data);
                if addr - MMIO_BASE != mmio::IPC_DOORBELL {
                    before_exit();
                }
                device.write(addr - MMIO_BASE, u64::from_le_bytes(v))
            }
            VcpuExit::MmioRead(addr, data) if is_device(addr) && data.len() <= 8 => {
                before_exit();
                let offset = addr - MMIO_BASE;
                let v = if transport.blocks(offset) {
                    device.served_read();
                    transport.blocking_read(ctx.index, offset, &ctx.stop)
                } else {
                    device.read(offset)
                };
                let n = data.len();
                data.copy_from_slice(&v.to_le_bytes()[..n]);
                Action::Continue
            }
            VcpuExit::MmioWrite(addr, data) if transport.owns(addr, true) => {
                transport.mmio_write(ctx.index, addr, data);
                Action::Continue
            }
            VcpuExit::MmioRead(addr, data) if transport.owns(addr, false) => {
                transport.mmio_read(ctx.index, addr, data);
                Action::Continue
            }
            VcpuExit::MmioWrite(gpa, _) | VcpuExit::MmioRead(gpa, _) => {
                let write = matches!(exit, VcpuExit::MmioWrite(..));
                let what = if write { "wrote" } else { "read" };
                break Ended::Died(
                    VmStatus::UnownedMmio { gpa, write },
                    format!("guest {what} GPA {gpa:#x}, which is neither its memory nor a device"),
                );
            }
            VcpuExit::Shutdown => {
                break Ended::Died(
                    VmStatus::Shutdown,
                    "VM shut down: a guest exception with no handler (triple fault)".into(),
                )
            }
            VcpuExit::InternalError => {
                // SAFETY: for KVM_EXIT_INTERNAL_ERROR the kernel filled the `internal` member.
                let sub = unsafe { vm.vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                break Ended::Died(
                    VmStatus::InternalError { suberror: sub },
                    format!("KVM internal error, suberror {sub}"),
                );
            }
            VcpuExit::FailEntry(reason, _) => {
                break Ended::Died(
                    VmStatus::FailEntry { reason },
                    format!("KVM failed to enter the guest, hardware reason {reason:#x}"),
                )
            }
            VcpuExit::Intr => continue,
            other => {
                let exit = format!("{other:?}");
                break Ended::Died(
                    VmStatus::UnexpectedExit { exit: exit.clone() },
                    format!("unexpected exit {exit}"),
                );
            }
        };
        match action {
            Action::Continue => {}
            Action::PhaseBegin => phase_start = vm.stats.as_ref().and_then(snapshot),
            Action::PhaseEnd => {
                if let (Some(stats), Some(start)) = (&vm.stats, &phase_start) {
                    measured = snapshot(stats).map(|end| delta(stats, start, &end));
                }
            }
            Action::Barrier => {
                if !ctx.barrier.wait(&ctx.stop) {
                    if let Some(reason) = ctx.stop.get() {
                        break Ended::Stopped(reason);
                    }
                }
            }
            Action::Done(code) => break Ended::Done(code),
            Action::IpcDoorbell(value) => {
                let known = transport.doorbell(ctx.index, value);
                if !known {
                    device.refuse(
                        mmio::IPC_DOORBELL,
                        mmio::Status::BadValue,
                        format!("doorbell value {value} is not 1 (send) or 2 (flush)"),
                    );
                }
            }
        }
    };
    transport.vcpu_ended(ctx.index);
    ctx.barrier.leave();

    let (status, death_message) = match ended {
        Ended::Done(exit_code) => (VmStatus::Done { exit_code }, None),
        Ended::Died(status, msg) => (status, Some(msg)),
        Ended::Stopped(StopReason::Timeout) => (
            VmStatus::Timeout,
            Some("stopped by the watchdog".to_string()),
        ),
        Ended::Stopped(StopReason::PeerFailed) => (
            VmStatus::Stopped,
            Some("stopped because another VM of the run failed".to_string()),
        ),
    };
    let death = death_message.map(|message| {
        log::warn!("{}: {message}", vm.name);
        DeathReport {
            message,
            registers: registers(&vm),
            console_tail: device.console_tail(DEATH_TAIL_LINES),
        }
    });

    let stats = match &vm.stats {
        None => Stats {
            available: false,
            unavailable: WELL_KNOWN_VCPU
                .iter()
                .chain(WELL_KNOWN_VM)
                .map(|s| s.to_string())
                .collect(),
            ..Default::default()
        },
        Some(s) => {
            let run = run_start
                .as_ref()
                .zip(snapshot(s))
                .map(|(a, b)| delta(s, a, &b));
            let unavailable = s
                .vcpu
                .missing(WELL_KNOWN_VCPU)
                .into_iter()
                .chain(s.vm.missing(WELL_KNOWN_VM))
                .map(String::from)
                .collect();
            Stats {
                available: true,
                measured,
                run,
                unavailable,
            }
        }
    };
    VmOutcome {
        status,
        death,
        device,
        stats,
    }
}

/// The vCPU registers that tell where a guest was.
fn registers(vm: &Vm) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    if let Ok(r) = vm.vcpu.get_regs() {
        for (k, v) in [
            ("rip", r.rip),
            ("rsp", r.rsp),
            ("rflags", r.rflags),
            ("rax", r.rax),
            ("rbx", r.rbx),
            ("rcx", r.rcx),
            ("rdx", r.rdx),
            ("rsi", r.rsi),
            ("rdi", r.rdi),
            ("rbp", r.rbp),
            ("r8", r.r8),
            ("r9", r.r9),
            ("r10", r.r10),
            ("r11", r.r11),
            ("r12", r.r12),
            ("r13", r.r13),
            ("r14", r.r14),
            ("r15", r.r15),
        ] {
            m.insert(k.to_string(), v);
        }
    }
    if let Ok(s) = vm.vcpu.get_sregs() {
        for (k, v) in [
            ("cr0", s.cr0),
            ("cr2", s.cr2),
            ("cr3", s.cr3),
            ("cr4", s.cr4),
            ("efer", s.efer),
            ("cs", u64::from(s.cs.selector)),
            ("cpl", u64::from(s.cs.selector & 3)),
        ] {
            m.insert(k.to_string(), v);
        }
    }
    m
}
