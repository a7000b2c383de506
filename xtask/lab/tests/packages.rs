//! The package list against the machine: after `cargo xtask deps`, everything each listed
//! package is said to provide is there. A package left out (or a path that moved) fails here
//! with the package's name, before the tests that need it fail in their own words.

use roamgate_lab::cmd::have;
use roamgate_lab::packages::PACKAGES;

#[test]
fn every_listed_package_provides_what_the_project_uses() {
    let missing: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| {
            p.provides
                .iter()
                .filter(|program| !have(program))
                .map(move |program| {
                    format!(
                        "{program} (Debian package {}, for {}) is missing",
                        p.name, p.why
                    )
                })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{}: run `cargo xtask deps` as root",
        missing.join("; ")
    );
}

#[test]
fn docs_lab_md_lists_every_package() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lab.md"))
        .expect("docs/lab.md is readable");
    for p in PACKAGES {
        assert!(
            doc.contains(&format!("| `{}` |", p.name)),
            "docs/lab.md's package table lacks {}",
            p.name
        );
    }
}
