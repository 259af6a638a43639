//! The run layer: what runs a VMM build. [`vmm`] starts the VMM process, [`images`] writes the
//! guest images, [`layout`] says what a run hands to the VMM, and [`rig`] executes an input and
//! returns what was planned and [`observed`]; [`hugepages`] reserves 2 MiB pages for
//! `remap-huge` runs. It knows no conformance or benchmark type.

pub mod hugepages;
pub mod images;
pub mod layout;
pub mod observed;
pub mod rig;
pub mod tree;
pub mod vmm;
