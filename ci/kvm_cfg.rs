// Build script shared by the crates whose tests need /dev/kvm (included by their build.rs).
// It sets `cfg(no_kvm)` when this host has no /dev/kvm and CI is not "true", so those tests are
// ignored with a visible reason there; under CI=true they run, and fail without KVM.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_kvm)");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-changed=/dev/kvm");
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !std::path::Path::new("/dev/kvm").exists() && !in_ci {
        println!("cargo:rustc-cfg=no_kvm");
    }
}
