//! The `tocsin-cli` binary for tests that run it: built once per test run into the
//! target directory the test runs from (it belongs to the SDK package), and started
//! without any `TOCSIN_*` variable of the test's own environment.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

/// Builds `tocsin-cli` once per test run and returns its path.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile dir>/deps/<this test>
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let target_dir = profile_dir.parent().unwrap();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let status = std::process::Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "tocsin-sdk", "--features", "cli"])
            .args(["--bin", "tocsin-cli", "--profile", profile, "--target-dir"])
            .arg(target_dir)
            .status()
            .unwrap();
        assert!(status.success(), "building tocsin-cli failed");
        profile_dir.join(format!("tocsin-cli{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A command for the CLI with `env` as its only `TOCSIN_*` variables, killed when
/// dropped.
pub fn command(env: &[(&str, String)], args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(binary());
    tocsin_testkit::without_tocsin_vars(cmd.as_std_mut());
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Asks a running CLI to stop as Ctrl-C would.
pub fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Standard output of a run that must succeed.
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The single `error: …` line of a run that must fail with `code`.
pub fn failed(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    stderr
}
