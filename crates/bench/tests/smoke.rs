//! The load generator itself, kept working: a short `compare` on both databases (the four processes,
//! seeding, every workload but pgbench's, a cold start) must print every table, and every call it
//! made must have succeeded. Figures are not looked at: they are for `docs/performance.md`.

use std::process::Command;

#[test]
fn a_short_compare_prints_every_table_and_every_call_succeeds() {
    let out = Command::new(env!("CARGO_BIN_EXE_landsby-bench"))
        .args([
            "compare",
            "--backends",
            "sqlite,postgres",
            "--clients",
            "4",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--rounds",
            "1",
            "--cases",
            "4",
            "--workloads",
            "empty,read,get-case,schedule-visit,mix",
            "--cold-starts",
            "1",
        ])
        .output()
        .expect("landsby-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("cold start to all four SERVING"),
        "{stdout}"
    );
    for backend in ["sqlite", "postgres"] {
        assert!(stdout.contains(&format!("### {backend}:")), "{stdout}");
    }
    for row in [
        "| tonic: empty RPC |",
        "| tonic+sqlx: one PK read |",
        "| GetCase |",
        "| ScheduleVisit |",
        "| mix: all |",
    ] {
        let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with(row)).collect();
        assert_eq!(lines.len(), 2, "{row} once per database:\n{stdout}");
        for line in lines {
            // The last column: the codes seen, e.g. `OK 1234` (the mix's per-RPC rows follow).
            let codes = line.trim_end_matches('|').rsplit('|').next().unwrap_or("");
            assert!(
                codes.trim().starts_with("OK ") && !codes.contains(','),
                "only OK expected: {line}"
            );
        }
    }
    assert!(stdout.contains("| case |"), "the memory table:\n{stdout}");
}
