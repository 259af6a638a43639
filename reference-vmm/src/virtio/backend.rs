//! The ioeventfd backend (`notify: ioeventfd`): KVM signals an eventfd for each 4-byte
//! QueueNotify write of 0 (rx) or 1 (tx), without an exit; one thread per run waits on all of
//! them with epoll and hands the counts to the [`VirtioHub`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pageflip_abi::virtio::{REG_QUEUE_NOTIFY, RX_QUEUE, TX_QUEUE, VIRTIO_MMIO_GPA};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::VirtioHub;
use crate::seccomp::{Confinement, InstallError, ThreadKind};
use crate::vm::{Vm, VmSetupError};

/// Epoll token of the stop eventfd.
const STOP_TOKEN: u64 = u64::MAX;

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// An eventfd or the epoll instance could not be created or set up.
    #[error("{what} failed: {source}")]
    Io {
        /// What failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The thread could not enter its seccomp filter.
    #[error(transparent)]
    Seccomp(#[from] InstallError),
    /// KVM refused an ioeventfd.
    #[error("vms[{vm}]: {source}")]
    Register {
        /// Index of the VM.
        vm: usize,
        /// What failed.
        source: VmSetupError,
    },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> BackendError {
    move |source| BackendError::Io { what, source }
}

/// The running backend thread.
#[derive(Debug)]
pub struct IoeventBackend {
    stop: Arc<AtomicBool>,
    wake: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl IoeventBackend {
    /// Registers two ioeventfds per VM of `vms` (QueueNotify = RX_QUEUE, TX_QUEUE) and starts
    /// the thread that serves them through `hub`, under its seccomp filter (`confinement`).
    pub fn start(
        hub: Arc<VirtioHub>,
        vms: &[Vm],
        confinement: &Confinement,
    ) -> Result<IoeventBackend, BackendError> {
        let epoll = Epoll::new().map_err(io("epoll_create"))?;
        let wake = EventFd::new(EFD_NONBLOCK).map_err(io("eventfd"))?;
        let add = |fd: &EventFd, token: u64| {
            epoll
                .ctl(
                    ControlOperation::Add,
                    std::os::fd::AsRawFd::as_raw_fd(fd),
                    EpollEvent::new(EventSet::IN, token),
                )
                .map_err(io("epoll_ctl"))
        };
        add(&wake, STOP_TOKEN)?;
        let mut fds = Vec::with_capacity(vms.len() * 2);
        for (i, vm) in vms.iter().enumerate() {
            for queue in [RX_QUEUE, TX_QUEUE] {
                let fd = EventFd::new(EFD_NONBLOCK).map_err(io("eventfd"))?;
                vm.register_ioevent(&fd, VIRTIO_MMIO_GPA + REG_QUEUE_NOTIFY, queue)
                    .map_err(|source| BackendError::Register { vm: i, source })?;
                add(&fd, fds.len() as u64)?;
                fds.push((i, queue, fd));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let confinement = confinement.clone();
        let (entered_tx, entered) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("virtio-ioeventfd".into())
            .spawn(move || {
                let result = confinement.enter(ThreadKind::Backend);
                let ok = result.is_ok();
                let _ = entered_tx.send(result);
                if ok {
                    serve(&epoll, &fds, &hub, &stop2);
                }
            })
            .map_err(io("spawning the backend thread"))?;
        // The thread has entered its filter before the vCPUs can notify it.
        if let Ok(Err(e)) = entered.recv() {
            let _ = thread.join();
            return Err(e.into());
        }
        // `wake` stays open (and registered) as long as the backend.
        Ok(IoeventBackend {
            stop,
            wake,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.write(1);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the virtio ioeventfd thread panicked");
            }
        }
    }
}

fn serve(epoll: &Epoll, fds: &[(usize, u32, EventFd)], hub: &VirtioHub, stop: &AtomicBool) {
    let mut events = vec![EpollEvent::default(); fds.len() + 1];
    while !stop.load(Ordering::SeqCst) {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("virtio ioeventfd thread: epoll_wait failed: {e}; stopping");
                return;
            }
        };
        let mut notified = false;
        for ev in &events[..n] {
            let Some((vm, queue, fd)) = fds.get(ev.data() as usize) else {
                continue;
            };
            if let Ok(count) = fd.read() {
                hub.notified(*vm, *queue, count);
                notified = true;
            }
        }
        if notified {
            busy_poll(hub, stop);
        }
    }
}

/// How long the backend keeps polling the tx rings after the last buffer it found, before it
/// re-arms notifications and sleeps (like vhost-net's `busyloop_timeout`): a sender that
/// keeps its queue busy is served without notifying at all.
pub const BUSY_POLL: Duration = Duration::from_micros(1000);

/// Polls the tx rings until none has had a new buffer for [`BUSY_POLL`], then re-arms.
fn busy_poll(hub: &VirtioHub, stop: &AtomicBool) {
    let mut idle_since = Instant::now();
    while !stop.load(Ordering::Relaxed) && idle_since.elapsed() < BUSY_POLL {
        if hub.poll() > 0 {
            idle_since = Instant::now();
        } else {
            std::thread::yield_now();
        }
    }
    hub.rearm();
}
