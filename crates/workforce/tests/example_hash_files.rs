//! The `hash_files` example prints exactly `b3sum`'s lines, sorted by path, for
//! every file of a tree (empty, nested, escaped names, followed links), counts
//! the files it cannot read instead of failing, and fails only when the root
//! cannot be listed.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// Shared by every example test: each uses a part of it, and its `pub` items
// are reachable only from this test crate.
#[allow(dead_code, unreachable_pub)]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{example, run_ok, stdout_lines};
use rstest::rstest;

/// A directory under the system's temp dir, unique to this test, removed on drop.
struct TempTree {
    root: PathBuf,
}

impl TempTree {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let root = std::env::temp_dir().join(format!(
            "workforce-hash-files-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&root).unwrap();
        TempTree { root }
    }

    fn write(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        // Removing a file needs write access to its directory, not to the file,
        // so the chmod 000 file goes too.
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The line `b3sum` prints for `path`, computed here with `blake3` directly.
fn b3sum_line(path: &Path) -> String {
    let hash = blake3::hash(&fs::read(path).unwrap());
    let text = path.to_str().unwrap();
    if text.contains(['\\', '\n']) {
        let escaped = text.replace('\\', "\\\\").replace('\n', "\\n");
        format!("\\{}  {escaped}", hash.to_hex())
    } else {
        format!("{}  {text}", hash.to_hex())
    }
}

/// The `errors=N` of the summary line on stderr.
fn error_total(stderr: &str) -> u64 {
    let summary = stderr
        .lines()
        .find(|line| line.starts_with("hash_files: files="))
        .unwrap_or_else(|| panic!("no summary line in stderr:\n{stderr}"));
    let field = summary
        .split_whitespace()
        .find_map(|field| field.strip_prefix("errors="))
        .unwrap();
    field.parse().unwrap()
}

#[rstest]
fn every_file_is_hashed_like_b3sum_and_unreadable_ones_are_counted(#[values(1, 3)] workers: usize) {
    let tree = TempTree::new(&format!("w{workers}"));
    let mut expected = vec![
        tree.write("empty", b""),
        tree.write("hello.txt", b"hello world\n"),
        // Larger than BLAKE3's 1 KiB chunks and than one read buffer.
        tree.write(
            "nested/deeper/data.bin",
            &(0..200_000u32).map(|n| (n % 251) as u8).collect::<Vec<_>>(),
        ),
        tree.write("back\\slash", b"b3sum escapes this name"),
    ];
    let mut expected_errors = Vec::new();

    // A link to a file is hashed as that file; a link to a directory is not
    // followed (this one would loop); a dangling link is an unreadable file.
    std::os::unix::fs::symlink(tree.root.join("hello.txt"), tree.root.join("link")).unwrap();
    expected.push(tree.root.join("link"));
    std::os::unix::fs::symlink(&tree.root, tree.root.join("nested/loop")).unwrap();
    std::os::unix::fs::symlink(tree.root.join("gone"), tree.root.join("dangling")).unwrap();
    expected_errors.push(tree.root.join("dangling"));

    // Permission denied, unless this runs as root, which reads anything: then
    // the file is simply hashed. Trying to read it tells which.
    let locked = tree.write("nested/locked", b"secret");
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if fs::read(&locked).is_ok() {
        expected.push(locked);
    } else {
        expected_errors.push(locked);
    }

    expected.sort();
    let expected_lines: Vec<String> = expected.iter().map(|path| b3sum_line(path)).collect();

    let mut command = example("hash_files");
    command
        .arg(&tree.root)
        .args(["--workers", &workers.to_string()]);
    let output = run_ok(command);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(stdout_lines(&output), expected_lines, "stderr:\n{stderr}");
    assert_eq!(
        error_total(&stderr),
        expected_errors.len() as u64,
        "stderr:\n{stderr}"
    );
    for path in &expected_errors {
        let reported = format!("hash_files: {}: ", path.display());
        assert!(
            stderr.contains(&reported),
            "{reported:?} not on stderr:\n{stderr}"
        );
    }
}

#[test]
fn an_empty_directory_prints_nothing() {
    let tree = TempTree::new("empty");
    let mut command = example("hash_files");
    command.arg(&tree.root).arg("--no-progress");
    let output = run_ok(command);
    assert!(stdout_lines(&output).is_empty());
    assert_eq!(error_total(&String::from_utf8_lossy(&output.stderr)), 0);
}

#[test]
fn by_default_it_hashes_the_workspace_crates_directory() {
    let output = run_ok(example("hash_files"));
    let lines = stdout_lines(&output);
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let this_file = crates_dir.join("workforce/tests/example_hash_files.rs");
    // Other files may change while the test runs, so only the shape is checked,
    // and that this very file is listed.
    assert!(
        lines
            .iter()
            .any(|line| line.ends_with(&format!("  {}", this_file.display())))
    );
    for line in &lines {
        let (hex, path) = line.split_once("  ").unwrap();
        assert!(hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert!(Path::new(path).starts_with(crates_dir), "{line}");
    }
    let mut sorted = lines.clone();
    sorted.sort_by(|a, b| Path::new(&a[66..]).cmp(Path::new(&b[66..])));
    assert_eq!(lines, sorted);
}

#[test]
fn a_root_that_cannot_be_listed_fails_the_run() {
    let tree = TempTree::new("missing");
    let output = example("hash_files")
        .arg(tree.root.join("no such directory"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stdout_lines(&output).is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot list the directory"));
}
