//! Builds the XDP object with clang, and the ABI dump of `bpf/roamgate_abi.h` with the host C
//! compiler; both land in `OUT_DIR`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const CLANG_MISSING: &str =
    "clang not found: run `cargo xtask deps` as root (installs clang and libbpf-dev)";

fn main() -> ExitCode {
    match build() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let bpf = manifest.join("bpf");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=CC");
    // Every C source and header under bpf/ (and the directories, so new files count too).
    rerun_for_tree(&bpf)?;

    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    if Command::new(&clang).arg("--version").output().is_err() {
        return Err(CLANG_MISSING.to_string());
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        return Err(
            "libbpf headers not found (/usr/include/bpf/bpf_helpers.h): run `cargo xtask deps` as root (installs clang and libbpf-dev)"
                .to_string(),
        );
    }

    // The asm/ headers of the target's multiarch directory (asm/types.h, asm/byteorder.h).
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_string());
    let multiarch = match arch.as_str() {
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let object = out.join("xdp_classify.o");
    run(
        Command::new(&clang)
            .args([
                "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
            ])
            .arg(format!("-I/usr/include/{multiarch}"))
            .arg("-c")
            .arg(bpf.join("xdp_classify.c"))
            .arg("-o")
            .arg(&object),
        "compiling bpf/xdp_classify.c with clang",
    )?;

    // The header's layout as the C compiler sees it, for the ABI test.
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let dumper = out.join("abi_dump");
    run(
        Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Werror", "-o"])
            .arg(&dumper)
            .arg(bpf.join("host/abi_dump.c")),
        "compiling bpf/host/abi_dump.c with the host C compiler (install build-essential)",
    )?;
    let dump = Command::new(&dumper)
        .output()
        .map_err(|e| format!("running {}: {e}", dumper.display()))?;
    if !dump.status.success() {
        return Err(format!("{} failed: {}", dumper.display(), dump.status));
    }
    std::fs::write(out.join("abi_layout.txt"), &dump.stdout)
        .map_err(|e| format!("writing abi_layout.txt: {e}"))?;
    Ok(())
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn rerun_for_tree(dir: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            rerun_for_tree(&path)?;
        } else if path.extension().is_some_and(|e| e == "c" || e == "h") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Ok(())
}
