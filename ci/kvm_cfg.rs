// Build script shared by the crates whose tests need /dev/kvm (included by their build.rs).
// It sets `cfg(no_kvm)` when this host has no /dev/kvm and CI is not "true", so those tests are
// ignored with a visible reason there; under CI=true they run, and fail without KVM.
// Likewise `cfg(no_tracing)` for the tests that also count host perf tracepoints: they need
// /dev/kvm, root and tracefs mounted (`mount -t tracefs nodev /sys/kernel/tracing`); whether
// the build runs as root is what decides.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_kvm)");
    println!("cargo::rustc-check-cfg=cfg(no_tracing)");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-changed=/dev/kvm");
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let kvm = std::path::Path::new("/dev/kvm").exists();
    if !kvm && !in_ci {
        println!("cargo:rustc-cfg=no_kvm");
    }
    // Watched so that mounting or unmounting tracefs reruns this script: a file every tracefs
    // has where tracefs is mounted, else the (empty) mount point, whose mtime changes when
    // tracefs is mounted on it. Never a missing path: that would rerun this script and rebuild
    // the crate on every build.
    let marks = [
        "/sys/kernel/tracing/events/header_page",
        "/sys/kernel/debug/tracing/events/header_page",
    ];
    let mounted = marks.iter().find(|m| std::path::Path::new(m).exists());
    match mounted {
        Some(m) => println!("cargo:rerun-if-changed={m}"),
        None if std::path::Path::new("/sys/kernel/tracing").is_dir() => {
            println!("cargo:rerun-if-changed=/sys/kernel/tracing")
        }
        None => {}
    }
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    let can_trace = kvm && root && mounted.is_some();
    if !can_trace && !in_ci {
        println!("cargo:rustc-cfg=no_tracing");
    }
}
