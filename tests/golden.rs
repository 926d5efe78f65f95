//! Golden trees: `mup gen` on each fixtures/<case> must produce exactly fixtures/<case>/expected.
//! MUP_UPDATE_GOLDEN=1 rewrites the goldens (refused under CI); the diff of fixtures/ is the review.

use crate::common::{fixtures, mup};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every entry of a tree: relative path → (mode, contents; None for a directory).
type Snapshot = BTreeMap<String, (u32, Option<String>)>;

fn snapshot(root: &Path, subst: &[(String, &str)]) -> Snapshot {
    fn walk(dir: &Path, root: &Path, subst: &[(String, &str)], out: &mut Snapshot) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read tree")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if rel == ".mup.lock" {
                continue; // the lock file, not part of the generated tree
            }
            let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
            if p.is_dir() {
                out.insert(format!("{rel}/"), (mode, None));
                walk(&p, root, subst, out);
            } else {
                let mut text = std::fs::read_to_string(&p).expect("text file");
                for (from, to) in subst {
                    text = text.replace(from.as_str(), to);
                }
                out.insert(rel, (mode, Some(text)));
            }
        }
    }
    let mut out = Snapshot::new();
    walk(root, root, subst, &mut out);
    out
}

/// The golden directory: `expected/MANIFEST` lists every entry with its mode (git keeps
/// neither modes nor empty directories); the files hold the contents.
fn read_expected(dir: &Path) -> Snapshot {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap_or_default();
    manifest
        .lines()
        .map(|line| {
            let (mode, rel) = line.split_once(' ').expect("MANIFEST line: MODE PATH");
            let mode = u32::from_str_radix(mode, 8).expect("octal mode");
            let contents = (!rel.ends_with('/'))
                .then(|| std::fs::read_to_string(dir.join(rel)).expect("golden file"));
            (rel.to_string(), (mode, contents))
        })
        .collect()
}

fn write_expected(dir: &Path, snap: &Snapshot) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create expected/");
    let mut manifest = String::new();
    for (rel, (mode, contents)) in snap {
        manifest.push_str(&format!("{mode:o} {rel}\n"));
        if let Some(text) = contents {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write golden");
        }
    }
    std::fs::write(dir.join("MANIFEST"), manifest).expect("write MANIFEST");
}

fn out_dir_name(case: &Path) -> String {
    std::fs::read_to_string(case.join("out-dir"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "cluster".into())
}

fn golden(name: &str) {
    let case = fixtures().join(name);
    let tmp = tempfile::tempdir().expect("tempdir");
    let tmp_path = tmp.path().to_path_buf();
    let out = tmp_path.join(out_dir_name(&case));
    let rel = |f: &str| PathBuf::from("fixtures").join(name).join(f);

    mup(&tmp_path.join("mup-home"))
        .args(["gen"])
        .arg(rel("topology.yaml"))
        .arg("--meta")
        .arg(rel("meta.yaml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();

    let subst = [
        (env!("CARGO_BIN_EXE_mup").to_string(), "@MUP@"),
        (tmp_path.display().to_string(), "@TMP@"),
        (fixtures().display().to_string(), "@FIXTURES@"),
    ];
    let actual = snapshot(&out, &subst);
    let expected_dir = case.join("expected");
    if std::env::var_os("MUP_UPDATE_GOLDEN").is_some() {
        assert!(
            std::env::var_os("CI").is_none(),
            "MUP_UPDATE_GOLDEN is refused under CI: goldens are reviewed, never rewritten by CI"
        );
        write_expected(&expected_dir, &actual);
    }
    let expected = read_expected(&expected_dir);
    if actual != expected {
        let render = |s: &Snapshot| {
            s.iter()
                .map(|(k, (m, c))| format!("== {m:o} {k}\n{}", c.clone().unwrap_or_default()))
                .collect::<String>()
        };
        let (a, e) = (render(&actual), render(&expected));
        let diff = similar::TextDiff::from_lines(&e, &a);
        panic!(
            "{name}: the generated tree differs from fixtures/{name}/expected \
             (MUP_UPDATE_GOLDEN=1 cargo test regenerates it):\n{}",
            diff.unified_diff().header("expected", "generated")
        );
    }

    // The replSetInitiate documents mup builds from this topology (one per set, in order).
    let tree = mup::Tree::load(&out).expect("the generated tree loads");
    let configs: Vec<serde_json::Value> = mup::sets(&tree.members)
        .iter()
        .map(|set| mongodb::bson::Bson::Document(mup::rs_config(set)).into_relaxed_extjson())
        .collect();
    let actual_json = serde_json::to_string_pretty(&configs).expect("json") + "\n";
    let json_path = case.join("replset-configs.json");
    if std::env::var_os("MUP_UPDATE_GOLDEN").is_some() {
        std::fs::write(&json_path, &actual_json).expect("write golden");
    }
    assert_eq!(
        std::fs::read_to_string(&json_path).unwrap_or_default(),
        actual_json,
        "{name}: fixtures/{name}/replset-configs.json (MUP_UPDATE_GOLDEN=1 regenerates it)"
    );

    // Regenerating from the tree's own meta.yaml is byte-identical, and so is a second run
    // from the user's meta.yaml: decisions are made once.
    for meta in [out.join("meta.yaml"), rel("meta.yaml")] {
        mup(&tmp_path.join("mup-home"))
            .args(["gen"])
            .arg(rel("topology.yaml"))
            .arg("--meta")
            .arg(&meta)
            .arg("--out")
            .arg(&out)
            .arg("--check")
            .assert()
            .success();
    }
}

#[test]
fn golden_standalone() {
    golden("standalone");
}

#[test]
fn golden_replica_set() {
    golden("replica-set");
}

#[test]
fn golden_sharded() {
    golden("sharded");
}

#[test]
fn golden_go_style_port_zero() {
    let _ports = crate::common::allocation_lock();
    let busy: Vec<u16> = (30000..30003)
        .filter(|p| crate::common::port_answers(*p))
        .collect();
    assert!(
        busy.is_empty(),
        "ports {busy:?} are in use on this machine (a running playground?): this case allocates \
         `port: 0` nodes from 30000 and its golden tree expects 30000-30002"
    );
    golden("go-style");
}

#[test]
fn golden_spaces_and_percent() {
    golden("spaces-percent");
}
