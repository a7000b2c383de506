//! The engine is sans-IO and deterministic: no clock reading (wall-clock time is an input),
//! no socket, thread or global RNG in its
//! sources (unit tests at the end of a file excepted), and the same seed gives the same bytes.

mod support;

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            // Only the code before the unit tests.
            let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
            out.push((path.display().to_string(), code));
        }
    }
}

#[test]
fn engine_sources_read_no_clock_socket_or_global_rng() {
    let mut files = Vec::new();
    sources(Path::new("src/engine"), &mut files);
    assert!(files.len() >= 10, "engine sources found: {}", files.len());
    let forbidden = [
        "Instant::now",
        // Wall-clock time comes in through `Engine::set_wall_clock`; the engine never reads it.
        "SystemTime::now",
        ".elapsed()",
        "thread_rng",
        "OsRng",
        "rand::fill",
        "UdpSocket",
        "std::thread",
        "std::fs",
        "std::env",
    ];
    for (path, code) in &files {
        for f in forbidden {
            assert!(!code.contains(f), "{path} uses {f}");
        }
    }
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let (i, r) = support::pair_configs();
        let mut sim = support::sim_pair(5, i, r);
        sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
        sim.run_for(std::time::Duration::from_secs(30));
        let sas: Vec<_> = sim.nodes[1].sink.iter().cloned().collect();
        (sim.nodes[0].sent.clone(), sim.nodes[1].sent.clone(), sas)
    };
    let (a, b) = (run(), run());
    assert!(!a.0.is_empty() && !a.2.is_empty());
    assert_eq!(a, b);
}
