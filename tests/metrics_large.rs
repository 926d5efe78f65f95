//! The exporter decodes a large answer of the daemon (more than 32 KiB: about 25 programs
//! and up) piece by piece as supervisord writes it; the scrape reports every program the
//! daemon knows, in the state the daemon's own supervisorctl shows.

use crate::common::*;
use crate::monitor::{metrics_port, samples, scrape};
use std::collections::BTreeMap;

#[test]
fn a_scrape_of_a_large_answer_reports_every_program_as_supervisorctl_does() {
    // 1.1–1.2 KB of XML per program: 42 programs answer in about 48 KB.
    const NODES: usize = 40;
    let topology: String = std::iter::once("mongod_servers:\n".to_string())
        .chain((0..NODES).map(|i| format!("  - {{host: localhost, port: {{p{i}}}}}\n")))
        .collect();
    let c = TestCluster::new("large", &topology, NODES);
    // The daemon and its monitoring programs only: stopped programs are in the answer too.
    c.ok(&["up"]);
    let status = std::process::Command::new(supervisorctl())
        .arg("-c")
        .arg(c.tree.join("supervisor.ini"))
        .arg("status")
        .output()
        .expect("supervisorctl status");
    let status = String::from_utf8_lossy(&status.stdout);
    // supervisorctl's `group:name  STATE ...` lines: name → state.
    let want: BTreeMap<String, String> = status
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.rsplit(':').next()?.to_string();
            Some((name, words.next()?.to_string()))
        })
        .collect();
    assert_eq!(want.len(), NODES + 2, "{status}");
    let codes = [("STOPPED", 0.0), ("STARTING", 10.0), ("RUNNING", 20.0)];
    let port = metrics_port(&c.tree);
    // The exporter starts with the daemon: scrape once it answers with every program.
    let mut got = BTreeMap::new();
    for _ in 0..100 {
        got = samples(&scrape(port), "node_supervisord_state")
            .into_iter()
            .map(|(labels, v)| (labels["name"].clone(), v))
            .collect();
        if got.len() == want.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (name, state) in &want {
        let code = codes.iter().find(|(s, _)| s == state).map(|(_, c)| *c);
        // A monitoring program may move from STARTING to RUNNING between the two looks.
        if name.starts_with("mup-") {
            assert!(matches!(got[name], 10.0 | 20.0), "{name}: {}", got[name]);
        } else {
            assert_eq!(Some(got[name]), code, "{name}: {state}");
        }
    }
}
