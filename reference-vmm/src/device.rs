//! The pageflip MMIO device of one VM (`docs/abi.md`): console, result records, samples,
//! measured-phase markers, doorbell, barrier and done register. Every guest request is
//! checked; a refused one leaves a status in the STATUS register, a log line, and an entry in
//! the run result, and the guest keeps running.

use std::sync::Arc;
use std::time::Instant;

use pageflip_abi::mmio::{self, Status};
use pageflip_abi::{RecordKind, ResultRecord, SampleDesc, RECORD_MESSAGE_LEN, RECORD_NAME_LEN};
use pageflip_interface::{Record, RecordStatus};

use crate::guest_errors::GuestErrorLog;
use crate::memory::GuestRam;

/// Most console bytes kept per VM; more is dropped with `LimitReached`.
pub const CONSOLE_KEEP: usize = 1 << 20;

/// What the vCPU loop must do after a device access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Resume the guest.
    Continue,
    /// Snapshot the stats: the measured phase begins.
    PhaseBegin,
    /// Snapshot the stats: the measured phase ends.
    PhaseEnd,
    /// Wait at the run's barrier, then resume.
    Barrier,
    /// The guest is done with this exit code.
    Done(u64),
    /// A remap-IPC doorbell with this value.
    IpcDoorbell(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Running,
    Ended,
}

/// State of one VM's pageflip device.
#[derive(Debug)]
pub struct Device {
    name: String,
    ipc: bool,
    ram: Arc<GuestRam>,
    status: Status,
    phase: Phase,
    /// Everything the guest printed (up to [`CONSOLE_KEEP`] bytes).
    pub console: String,
    /// Result records.
    pub records: Vec<Record>,
    /// Samples.
    pub samples: Vec<u64>,
    /// Doorbell writes.
    pub doorbells: u64,
    /// Refused requests.
    pub guest_errors: GuestErrorLog,
    /// When the guest first touched the device.
    pub first_access: Option<Instant>,
    /// When the guest wrote its first result record.
    pub first_record: Option<Instant>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Device {
    /// A device for VM `name` over its memory.
    pub fn new(name: &str, ram: Arc<GuestRam>, ipc: bool) -> Device {
        Device {
            name: name.into(),
            ipc,
            ram,
            status: Status::Ok,
            phase: Phase::NotStarted,
            console: String::new(),
            records: Vec::new(),
            samples: Vec::new(),
            doorbells: 0,
            guest_errors: GuestErrorLog::default(),
            first_access: None,
            first_record: None,
        }
    }

    /// The last `n` console lines.
    pub fn console_tail(&self, n: usize) -> Vec<String> {
        let lines: Vec<&str> = self.console.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.to_string())
            .collect()
    }

    /// Refuses a request: sets STATUS, logs, and lists it in the result.
    pub fn refuse(&mut self, offset: u64, status: Status, detail: String) {
        self.status = status;
        let register = mmio::register_name(offset);
        self.guest_errors
            .record(&self.name, register, Some(offset), status.name(), detail);
    }

    /// Notes the guest's first access.
    pub fn touch(&mut self) {
        self.first_access.get_or_insert_with(Instant::now);
    }

    /// A good read the transport serves (`IPC_RECV_WAIT`): noted, and STATUS set to `ok`,
    /// as every access but a read of STATUS sets it.
    pub fn served_read(&mut self) {
        self.touch();
        self.status = Status::Ok;
    }

    /// A guest read at `offset` within the device.
    pub fn read(&mut self, offset: u64) -> u64 {
        self.touch();
        match offset {
            mmio::STATUS => self.status as u64,
            mmio::MAGIC => {
                self.status = Status::Ok;
                mmio::MAGIC_VALUE
            }
            mmio::IPC_RECV_WAIT if !self.ipc => {
                self.refuse(
                    offset,
                    Status::BadRegister,
                    "read: no remap-IPC transport in this run".into(),
                );
                0
            }
            _ => {
                let what = if mmio::register_name(offset) == "unknown" {
                    "no register at this offset"
                } else {
                    "register is write-only"
                };
                self.refuse(offset, Status::BadRegister, format!("read: {what}"));
                0
            }
        }
    }

    /// A guest write of `value` at `offset` within the device.
    pub fn write(&mut self, offset: u64, value: u64) -> Action {
        self.touch();
        let result = match offset {
            mmio::CONSOLE => self.console_write(value),
            mmio::RESULT => self.result_write(value),
            mmio::SAMPLES => self.samples_write(value),
            mmio::PHASE => return self.phase_write(value),
            mmio::DOORBELL => {
                self.doorbells += 1;
                Ok(())
            }
            mmio::DONE => return Action::Done(value),
            mmio::BARRIER => {
                self.status = Status::Ok;
                return Action::Barrier;
            }
            mmio::IPC_DOORBELL if self.ipc => {
                self.status = Status::Ok;
                return Action::IpcDoorbell(value);
            }
            mmio::IPC_DOORBELL => Err((
                Status::BadRegister,
                "no remap-IPC transport in this run".into(),
            )),
            mmio::MAGIC | mmio::STATUS | mmio::IPC_RECV_WAIT => {
                Err((Status::BadRegister, "write: register is read-only".into()))
            }
            _ => Err((
                Status::BadRegister,
                "write: no register at this offset".into(),
            )),
        };
        match result {
            Ok(()) => self.status = Status::Ok,
            Err((status, detail)) => self.refuse(offset, status, detail),
        }
        Action::Continue
    }

    fn console_write(&mut self, value: u64) -> Result<(), (Status, String)> {
        let (gpa, len) = mmio::console_arg_decode(value);
        if len == 0 || len > mmio::CONSOLE_MAX {
            return Err((
                Status::BadLength,
                format!("console length {len}, must be 1..={}", mmio::CONSOLE_MAX),
            ));
        }
        let bytes = self.ram.read_bytes(gpa, len as usize).ok_or_else(|| {
            (
                Status::BadAddress,
                format!("console buffer {gpa:#x}+{len} is outside guest memory"),
            )
        })?;
        let room = CONSOLE_KEEP.saturating_sub(self.console.len());
        if room == 0 {
            return Err((
                Status::LimitReached,
                format!("console keeps at most {CONSOLE_KEEP} bytes"),
            ));
        }
        let s = text(&bytes[..bytes.len().min(room)]);
        for line in s.lines() {
            log::debug!("{}| {line}", self.name);
        }
        self.console.push_str(&s);
        Ok(())
    }

    fn result_write(&mut self, gpa: u64) -> Result<(), (Status, String)> {
        let r: ResultRecord = self.ram.read_pod(gpa).ok_or_else(|| {
            (
                Status::BadAddress,
                format!("result record at {gpa:#x} is outside guest memory"),
            )
        })?;
        let status = match RecordKind::from_u32(r.kind) {
            Some(RecordKind::Pass) => RecordStatus::Pass,
            Some(RecordKind::Fail) => RecordStatus::Fail,
            Some(RecordKind::Skip) => RecordStatus::Skip,
            None => {
                return Err((
                    Status::BadValue,
                    format!("record kind {} is not 1, 2 or 3", r.kind),
                ))
            }
        };
        if r.name_len == 0 || r.name_len as usize > RECORD_NAME_LEN {
            return Err((
                Status::BadLength,
                format!(
                    "record name_len {}, must be 1..={RECORD_NAME_LEN}",
                    r.name_len
                ),
            ));
        }
        if r.message_len as usize > RECORD_MESSAGE_LEN {
            return Err((
                Status::BadLength,
                format!(
                    "record message_len {}, must be at most {RECORD_MESSAGE_LEN}",
                    r.message_len
                ),
            ));
        }
        if self.records.len() as u64 >= mmio::RECORDS_MAX {
            return Err((
                Status::LimitReached,
                format!("at most {} records", mmio::RECORDS_MAX),
            ));
        }
        let record = Record {
            name: text(&r.name[..r.name_len as usize]),
            status,
            message: text(&r.message[..r.message_len as usize]),
        };
        log::debug!(
            "{}: record {:?} {} {}",
            self.name,
            record.status,
            record.name,
            record.message
        );
        self.first_record.get_or_insert_with(Instant::now);
        self.records.push(record);
        Ok(())
    }

    fn samples_write(&mut self, gpa: u64) -> Result<(), (Status, String)> {
        let d: SampleDesc = self.ram.read_pod(gpa).ok_or_else(|| {
            (
                Status::BadAddress,
                format!("sample descriptor at {gpa:#x} is outside guest memory"),
            )
        })?;
        if d.count == 0 || d.count > mmio::SAMPLES_MAX {
            return Err((
                Status::BadLength,
                format!(
                    "sample count {}, must be 1..={}",
                    d.count,
                    mmio::SAMPLES_MAX
                ),
            ));
        }
        if !d.gpa.is_multiple_of(8) || !self.ram.contains(d.gpa, d.count * 8) {
            return Err((
                Status::BadAddress,
                format!(
                    "samples at {:#x} x {} are unaligned or outside guest memory",
                    d.gpa, d.count
                ),
            ));
        }
        if self.samples.len() as u64 + d.count > mmio::SAMPLES_TOTAL_MAX {
            return Err((
                Status::LimitReached,
                format!("at most {} samples per run", mmio::SAMPLES_TOTAL_MAX),
            ));
        }
        let bytes = self
            .ram
            .read_bytes(d.gpa, (d.count * 8) as usize)
            .ok_or((Status::BadAddress, "samples unreadable".to_string()))?;
        self.samples.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
        );
        Ok(())
    }

    fn phase_write(&mut self, value: u64) -> Action {
        let next = match (value, self.phase) {
            (mmio::PHASE_BEGIN, Phase::NotStarted) => Phase::Running,
            (mmio::PHASE_END, Phase::Running) => Phase::Ended,
            (mmio::PHASE_BEGIN | mmio::PHASE_END, state) => {
                self.refuse(
                    mmio::PHASE,
                    Status::BadState,
                    format!(
                        "phase {value} in state {state:?}: one measured phase, begun then ended"
                    ),
                );
                return Action::Continue;
            }
            _ => {
                self.refuse(
                    mmio::PHASE,
                    Status::BadValue,
                    format!("phase value {value} is not 1 (begin) or 2 (end)"),
                );
                return Action::Continue;
            }
        };
        self.phase = next;
        self.status = Status::Ok;
        if next == Phase::Running {
            Action::PhaseBegin
        } else {
            Action::PhaseEnd
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pageflip_abi::mmio::console_arg;

    const MEM: u64 = 4 << 20;

    fn dev() -> Device {
        Device::new("t", Arc::new(GuestRam::new("t", MEM).unwrap()), false)
    }

    fn status(d: &mut Device) -> Status {
        Status::from_u64(d.read(mmio::STATUS)).unwrap()
    }

    #[test]
    fn console_and_limits() {
        let mut d = dev();
        d.ram.write_bytes(0x30_0000, b"hi\nthere\n");
        assert_eq!(
            d.write(mmio::CONSOLE, console_arg(0x30_0000, 9)),
            Action::Continue
        );
        assert_eq!(status(&mut d), Status::Ok);
        assert_eq!(d.console, "hi\nthere\n");
        assert_eq!(d.console_tail(1), vec!["there"]);
        d.write(mmio::CONSOLE, console_arg(MEM, 16));
        assert_eq!(status(&mut d), Status::BadAddress);
        d.write(mmio::CONSOLE, console_arg(0x30_0000, 0));
        assert_eq!(status(&mut d), Status::BadLength);
        d.write(mmio::CONSOLE, console_arg(0x30_0000, mmio::CONSOLE_MAX + 1));
        assert_eq!(status(&mut d), Status::BadLength);
        assert_eq!(d.guest_errors.list.len(), 3);
        assert_eq!(d.console, "hi\nthere\n", "refused writes print nothing");
    }

    #[test]
    fn records_are_checked() {
        let mut d = dev();
        let mut r = ResultRecord::zeroed();
        r.kind = RecordKind::Fail as u32;
        r.name_len = 3;
        r.name[..3].copy_from_slice(b"abc");
        r.message_len = 2;
        r.message[..2].copy_from_slice(b"no");
        d.ram.write_pod(0x30_0000, &r);
        d.write(mmio::RESULT, 0x30_0000);
        assert_eq!(status(&mut d), Status::Ok);
        assert_eq!(d.records[0].name, "abc");
        assert_eq!(d.records[0].status, RecordStatus::Fail);
        assert!(d.first_record.is_some());
        for (patch, want) in [
            (
                (|r: &mut ResultRecord| r.kind = 9) as fn(&mut ResultRecord),
                Status::BadValue,
            ),
            (|r| r.name_len = 0, Status::BadLength),
            (|r| r.name_len = 65, Status::BadLength),
            (|r| r.message_len = 241, Status::BadLength),
        ] {
            let mut bad = r;
            patch(&mut bad);
            d.ram.write_pod(0x30_0000, &bad);
            d.write(mmio::RESULT, 0x30_0000);
            assert_eq!(status(&mut d), want);
        }
        d.write(mmio::RESULT, MEM - 8);
        assert_eq!(status(&mut d), Status::BadAddress);
        assert_eq!(d.records.len(), 1);
    }

    #[test]
    fn samples_are_checked() {
        let mut d = dev();
        d.ram.write_pod(0x30_0000, &7u64);
        d.ram.write_pod(0x30_0008, &9u64);
        let mut desc = SampleDesc {
            gpa: 0x30_0000,
            count: 2,
        };
        d.ram.write_pod(0x31_0000, &desc);
        d.write(mmio::SAMPLES, 0x31_0000);
        assert_eq!(d.samples, vec![7, 9]);
        for (gpa, count, want) in [
            (0x30_0000, 0, Status::BadLength),
            (0x30_0000, mmio::SAMPLES_MAX + 1, Status::BadLength),
            (0x30_0004, 1, Status::BadAddress),
            (MEM - 8, 2, Status::BadAddress),
        ] {
            desc = SampleDesc { gpa, count };
            d.ram.write_pod(0x31_0000, &desc);
            d.write(mmio::SAMPLES, 0x31_0000);
            assert_eq!(status(&mut d), want, "{gpa:#x} {count}");
        }
        d.write(mmio::SAMPLES, MEM);
        assert_eq!(status(&mut d), Status::BadAddress);
        assert_eq!(d.samples.len(), 2);
    }

    #[test]
    fn registers_phase_and_done() {
        let mut d = dev();
        assert_eq!(d.read(mmio::MAGIC), mmio::MAGIC_VALUE);
        d.read(mmio::CONSOLE);
        assert_eq!(status(&mut d), Status::BadRegister);
        d.write(mmio::MAGIC, 1);
        assert_eq!(status(&mut d), Status::BadRegister);
        d.write(0x800, 1);
        assert_eq!(status(&mut d), Status::BadRegister);
        assert_eq!(d.write(mmio::PHASE, mmio::PHASE_END), Action::Continue);
        assert_eq!(status(&mut d), Status::BadState);
        assert_eq!(d.write(mmio::PHASE, 7), Action::Continue);
        assert_eq!(status(&mut d), Status::BadValue);
        assert_eq!(d.write(mmio::PHASE, mmio::PHASE_BEGIN), Action::PhaseBegin);
        assert_eq!(d.write(mmio::PHASE, mmio::PHASE_BEGIN), Action::Continue);
        assert_eq!(d.write(mmio::PHASE, mmio::PHASE_END), Action::PhaseEnd);
        d.write(mmio::DOORBELL, 0);
        assert_eq!(d.doorbells, 1);
        assert_eq!(d.write(mmio::BARRIER, 0), Action::Barrier);
        assert_eq!(d.write(mmio::DONE, 5), Action::Done(5));
        assert_eq!(d.guest_errors.total, 6);
    }
}
