//! Marks KVM-only tests as ignored on hosts without /dev/kvm (see ci/kvm_cfg.rs).
include!("../ci/kvm_cfg.rs");
