//! `xaynet demo`, `xaynet simulate` and `--help` as a user runs them (the real binary, real
//! HTTP on 127.0.0.1), with small workloads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn xaynet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xaynet"))
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["simulate", "--help"],
        vec!["keygen", "--help"],
        vec!["model", "--help"],
        vec!["model", "get", "--help"],
    ] {
        let out = xaynet().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
}

#[test]
fn demo_trains_and_matches_plain_federated_averaging() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("accuracy.svg");
    let out = xaynet()
        .args(["demo", "--participants", "8", "--rounds", "4", "--plot"])
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Four evaluated rounds, each comparing masked and plain averaging.
    let rounds: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("round "))
        .filter(|l| l.contains("plain FedAvg"))
        .collect();
    assert_eq!(rounds.len(), 4, "{stdout}");
    let accuracy = |line: &str| -> f64 {
        let at = line.find("accuracy").unwrap() + "accuracy".len();
        line[at..]
            .trim_start()
            .split('%')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(accuracy(rounds[3]) > 50.0, "it learns: {stdout}");
    for line in &rounds {
        let diff: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(diff <= 1e-6, "{line}");
    }
    assert!(stdout.contains("centrally trained model"));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
}

#[test]
fn simulate_times_rounds_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sim.json");
    let out = xaynet()
        .args([
            "simulate",
            "-n",
            "30",
            "-l",
            "2000",
            "--rounds",
            "2",
            "--summers",
            "2",
            "--updaters",
            "4",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("median round time"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // A round without enough eligible participants fails, is reported and not counted.
    let rounds: Vec<&serde_json::Value> = doc["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["completed"] == true)
        .collect();
    assert_eq!(rounds.len(), 3, "one warm-up and two timed rounds");
    for r in rounds {
        assert_eq!(r["updates"], 4, "{r}");
        assert!(r["wall_s"].as_f64().unwrap() > 0.0);
        assert!(r["coordinator_cpu_s"].as_f64().is_some());
    }
    assert!(doc["median_round_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn simulate_explains_an_unreachable_coordinator() {
    let out = xaynet()
        .args([
            "simulate",
            "--url",
            "http://127.0.0.1:9",
            "-n",
            "2",
            "-l",
            "10",
            "--round-timeout",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}
