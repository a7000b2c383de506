//! Running the programs the lab drives (`ip`, `nft`, `swanctl`, …) with errors that say what to do.

use std::process::{Command, Output, Stdio};

use crate::error::{LabError, Result};

/// The Debian package that provides `program`, for error messages (from
/// [`crate::packages::PACKAGES`]).
pub fn package_of(program: &str) -> &'static str {
    crate::packages::package_of(program)
        .map_or("unknown: add it to xtask/lab/src/packages.rs", |p| p.name)
}

/// Whether `program` can be run: an absolute path that exists, or a name found on `PATH`.
pub fn have(program: &str) -> bool {
    if program.starts_with('/') {
        return std::path::Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Fails with a clear sentence when `program` is not installed.
pub fn require(program: &str) -> Result<()> {
    if have(program) {
        Ok(())
    } else {
        Err(LabError::MissingProgram {
            program: program.to_string(),
            package: package_of(program),
        })
    }
}

/// Runs `program args…` to completion; a non-zero exit is an error carrying its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    require(program)?;
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io(format!("running {program}"), e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Like [`run`], returning standard output as text.
pub fn run_text(program: &str, args: &[&str]) -> Result<String> {
    run(program, args).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_its_package_and_the_fix() {
        let e = require("/usr/lib/ipsec/charon-that-is-not-there").unwrap_err();
        assert!(
            e.to_string().contains("run `cargo xtask deps` as root"),
            "{e}"
        );
        let e = require("swanctl-not-installed").unwrap_err();
        assert!(e.to_string().contains("is not installed"), "{e}");
        assert_eq!(package_of("swanctl"), "strongswan-swanctl");
        assert_eq!(package_of("/usr/lib/ipsec/charon"), "strongswan-charon");
    }

    #[test]
    fn a_failing_command_carries_its_stderr() {
        let e = run("ip", &["link", "show", "dev", "no-such-interface-x"]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("ip link show dev no-such-interface-x"),
            "{text}"
        );
        assert!(text.contains("does not exist"), "{text}");
    }
}
