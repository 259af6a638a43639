//! pageflip's reference KVM VMM.
pub mod cli;
