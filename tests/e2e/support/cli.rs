//! The command line under test: `serin <command> ... --kubeconfig <testbed>`
//! as a process, its output, and the kubectl plugin's symlink.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::TestEnv;

/// How long any one command may take before the test fails.
const LIMIT: Duration = Duration::from_secs(600);

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last line printed on stdout.
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default()
    }
}

/// `serin <args> --kubeconfig <testbed>`, with `KUBECONFIG` unset so only
/// the flag names the cluster (`completion` takes no kubeconfig).
pub fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_serin"));
    cmd.args(args);
    if args.first() != Some(&"completion") {
        cmd.arg("--kubeconfig").arg(&env.kubeconfig);
    }
    cmd.env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `serin <args>` to its end.
pub async fn serin(env: &TestEnv, args: &[&str]) -> Run {
    output(command(env, args), &format!("serin {}", args.join(" "))).await
}

/// Runs `cmd` to its end (at most [`LIMIT`]).
pub async fn output(mut cmd: Command, what: &str) -> Run {
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within {LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ {what}\n{}{}(exit {})", run.stdout, run.stderr, run.code);
    run
}

/// The frames of `serin get canary --watch` printed to a pipe.
pub fn frames(stdout: &str) -> Vec<&str> {
    stdout
        .split("---\n")
        .filter(|f| !f.trim().is_empty())
        .collect()
}

/// A directory holding `kubectl-serin`, a symlink to the binary under
/// test, for kubectl's plugin lookup on PATH; removed on drop.
pub struct PluginDir {
    pub path: PathBuf,
}

impl PluginDir {
    pub fn new(namespace: &str) -> PluginDir {
        let path = std::env::temp_dir().join(format!("serin-plugin-{namespace}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_serin"), path.join("kubectl-serin"))
            .unwrap();
        PluginDir { path }
    }

    /// `PATH` with this directory first.
    pub fn path_var(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_default();
        format!("{}:{rest}", self.path.display())
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
