//! The list of a VM's refused guest requests, shared by its devices: bounded in memory and
//! in the log, complete in its count.

use pageflip_interface::GuestError;

/// Most refused requests listed per VM and device; more are counted only.
pub const GUEST_ERRORS_KEEP: usize = pageflip_abi::mmio::GUEST_ERRORS_LISTED as usize;
/// Refused requests logged per VM and device before the log goes quiet.
const GUEST_ERRORS_LOGGED: usize = 100;

/// Refused requests of one VM's device.
#[derive(Clone, Debug, Default)]
pub struct GuestErrorLog {
    /// The first [`GUEST_ERRORS_KEEP`] refused requests.
    pub list: Vec<GuestError>,
    /// All refused requests, counted.
    pub total: u64,
}

impl GuestErrorLog {
    /// Records a refused request of VM `vm` to `register` (at `offset` in its device, if it
    /// is a register access): logs it (the first ones) and lists it.
    pub fn record(
        &mut self,
        vm: &str,
        register: &str,
        offset: Option<u64>,
        status: &str,
        detail: String,
    ) {
        self.total += 1;
        let n = self.total as usize;
        if n <= GUEST_ERRORS_LOGGED {
            let at = offset.map_or(String::new(), |o| format!(" (offset {o:#x})"));
            log::warn!("{vm}: refused guest request to {register}{at}: {status}: {detail}");
        } else if n == GUEST_ERRORS_LOGGED + 1 {
            log::warn!("{vm}: further refused requests are not logged");
        }
        if self.list.len() < GUEST_ERRORS_KEEP {
            self.list.push(GuestError {
                register: register.into(),
                status: status.into(),
                detail,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_bounded_list_and_counts_all() {
        let mut log = GuestErrorLog::default();
        for i in 0..GUEST_ERRORS_KEEP + 5 {
            log.record("vm0", "virtio:tx", None, "refused", format!("#{i}"));
        }
        assert_eq!(log.list.len(), GUEST_ERRORS_KEEP);
        assert_eq!(log.total, GUEST_ERRORS_KEEP as u64 + 5);
        assert_eq!(log.list[0].register, "virtio:tx");
    }
}
