//! Builds the guest images from `guest/` and embeds them (`$OUT_DIR/images.rs`).
//!
//! The guests are `no_std` programs for bare metal, linked by `guest/guest.ld` with flags no
//! host crate may see, so they are built by a second cargo in its own target dir under
//! `OUT_DIR`, always in release mode, with `CARGO_ENCODED_RUSTFLAGS` set to
//! [`GUEST_RUSTFLAGS`] and the outer build's environment removed (see [`clean_env`]).

use std::env;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target the guests are built for: the host toolchain's, used as a bare-metal x86-64
/// target (the only one installed; no `x86_64-unknown-none` and no rust-src).
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Rustflags of the guest build, besides `-C link-arg=-T<guest.ld>`.
const GUEST_RUSTFLAGS: &[&str] = &[
    // Absolute addresses, no PIE, no GOT: the image runs where it is linked.
    "-Crelocation-model=static",
    // No C runtime, no libc, no dynamic linking: the runtime provides `_start` and `mem*`.
    "-Clink-arg=-nostartfiles",
    "-Clink-arg=-nostdlib",
    "-Clink-arg=-static",
    // No .note.gnu.build-id section (the linker script discards notes anyway).
    "-Clink-arg=-Wl,--build-id=none",
    // Segments aligned to 4 KiB pages, not to the linker's default maximum page size.
    "-Clink-arg=-Wl,-z,max-page-size=4096",
    "-Clink-arg=-Wl,-z,noexecstack",
];

/// Variables of the outer build that must not reach the guest build, by exact name.
const REMOVED_VARS: &[&str] = &[
    "CARGO",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_INCREMENTAL",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_TARGET_TMPDIR",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
    "DEBUG",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "OUT_DIR",
    "PROFILE",
    "RUSTC_LINKER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTDOC",
    "RUSTDOCFLAGS",
    "RUSTFLAGS",
    "TARGET",
];

/// Variables of the outer build that must not reach the guest build, by prefix.
/// (`CARGO_MAKEFLAGS` stays: it hands the outer build's jobserver to the inner one.)
const REMOVED_PREFIXES: &[&str] = &[
    "CARGO_BIN_",
    "CARGO_BUILD_",
    "CARGO_CFG_",
    "CARGO_CRATE_",
    "CARGO_FEATURE_",
    "CARGO_MANIFEST_",
    "CARGO_PKG_",
    "CARGO_PROFILE_",
    "CARGO_TARGET_",
    "DEP_",
    "__CARGO_",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let guest_dir = manifest_dir.join("guest");
    let guest_manifest = guest_dir.join("Cargo.toml");
    let linker_script = guest_dir.join("guest.ld");

    // Everything the guest images are built from.
    println!("cargo:rerun-if-changed=build.rs");
    for path in [
        guest_manifest.clone(),
        guest_dir.join("Cargo.lock"),
        linker_script.clone(),
        manifest_dir.join("abi").join("Cargo.toml"),
        // The abi crate inherits its package fields and lints from the workspace manifest.
        manifest_dir
            .parent()
            .expect("workloads/ is inside the workspace")
            .join("Cargo.toml"),
    ] {
        rerun_if_changed(&path);
    }
    for dir in [guest_dir.join("src"), manifest_dir.join("abi").join("src")] {
        rerun_if_changed_tree(&dir);
    }

    let bins = bin_names(&guest_dir.join("src").join("bin"));
    let target_dir = out_dir.join("guest-target");

    let mut rustflags: Vec<String> = GUEST_RUSTFLAGS.iter().map(|s| s.to_string()).collect();
    rustflags.push(format!("-Clink-arg=-T{}", utf8(&linker_script)));

    let mut cmd = Command::new(&cargo);
    clean_env(&mut cmd);
    cmd.current_dir(&guest_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .arg("build")
        .arg("--release")
        .arg("--offline")
        .arg("--locked")
        .arg("--bins")
        .arg("--color=never")
        .args(["--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(&guest_manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run {cargo:?} to build the guest images: {e}"),
    };
    if !output.status.success() {
        eprintln!("---- output of the guest build: {cmd:?}");
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        eprintln!("---- end of the output of the guest build");
        panic!(
            "building the guest images in {} failed ({}); the cargo output is above",
            guest_dir.display(),
            output.status
        );
    }

    let release_dir = target_dir.join(GUEST_TARGET).join("release");
    let mut code = String::from(
        "/// Every guest image, as `(name, ELF bytes)`, sorted by name; a guest's name is the\n\
         /// file stem of its source in `workloads/guest/src/bin`.\n\
         pub static IMAGES: &[(&str, &[u8])] = &[\n",
    );
    for name in &bins {
        let path = release_dir.join(name);
        if !path.is_file() {
            panic!(
                "the guest build succeeded but made no image {}",
                path.display()
            );
        }
        writeln!(code, "    ({name:?}, include_bytes!({:?})),", utf8(&path)).unwrap();
    }
    code.push_str("];\n");
    let images_rs = out_dir.join("images.rs");
    // Rewrite only on change, so that an unchanged list does not look new.
    if fs::read_to_string(&images_rs).ok().as_deref() != Some(code.as_str()) {
        fs::write(&images_rs, code)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", images_rs.display()));
    }
}

/// Removes the outer build's variables (flags, wrappers, target dir, build-script inputs)
/// from `cmd`'s environment, so that the guest build sees only what it sets itself.
fn clean_env(cmd: &mut Command) {
    for (key, _) in env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if REMOVED_VARS.contains(&name) || REMOVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
}

/// Names of the guest programs: the `.rs` file stems in `dir` (`guest/src/bin`), sorted.
fn bin_names(dir: &Path) -> Vec<String> {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .path();
        if path.extension() == Some(OsStr::new("rs")) {
            let stem = path.file_stem().expect("a file name");
            names.push(utf8(Path::new(stem)).to_owned());
        }
    }
    names.sort();
    names
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", utf8(path));
}

/// Asks for a rerun when anything in `dir` changes: the directory itself (cargo scans it,
/// new files included) and each file in it.
fn rerun_if_changed_tree(dir: &Path) {
    rerun_if_changed(dir);
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            rerun_if_changed_tree(&path);
        } else {
            rerun_if_changed(&path);
        }
    }
}

fn utf8(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("path {} is not UTF-8", path.display()))
}
