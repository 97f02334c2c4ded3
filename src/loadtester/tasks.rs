//! Running task commands: `sh -c` / `bash -c` scripts and `kubectl`/`helm`
//! invocations, with the `-timeout` limit, combined stdout and stderr (as Go's
//! `CombinedOutput`), the de-duplicated asynchronous `cmd` runner and the
//! `hey` shim that makes Flagger's load-test commands work unchanged.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Why a task command failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("command {command} failed: cannot start {program}: {source}")]
    Spawn {
        command: String,
        program: String,
        source: std::io::Error,
    },
    /// Go's wording: `command <cmd> failed: <output>: exit status 1`.
    #[error("command {command} failed: {output}: {status}")]
    Failed {
        command: String,
        output: String,
        status: String,
    },
}

/// One process to run: `program args...`; `command` is the task's command as
/// Flagger's messages quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub command: String,
}

impl Invocation {
    /// `sh -c <cmd>`, the asynchronous `cmd` task.
    pub fn shell(cmd: &str) -> Self {
        Self::script("sh", cmd)
    }

    /// `bash -c <cmd>`, the blocking `bash` task.
    pub fn bash(cmd: &str) -> Self {
        Self::script("bash", cmd)
    }

    fn script(shell: &str, cmd: &str) -> Self {
        Self {
            program: shell.to_string(),
            args: vec!["-c".to_string(), cmd.to_string()],
            command: cmd.to_string(),
        }
    }

    /// `kubectl <cmd>` or `helm <cmd>`: split on whitespace, no quoting, as
    /// Flagger's `strings.Fields`.
    pub fn tool(program: &str, cmd: &str) -> Self {
        Self {
            program: program.to_string(),
            args: split_fields(cmd),
            command: cmd.to_string(),
        }
    }

    /// Whether the script calls `hey`, so the shim must be on its PATH.
    fn needs_hey(&self) -> bool {
        self.program == "hey" || self.args.iter().any(|arg| mentions_hey(arg))
    }
}

/// Go's `strings.Fields`.
pub fn split_fields(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_string).collect()
}

/// Whether `hey` appears as a command word in a shell script.
pub fn mentions_hey(script: &str) -> bool {
    script
        .split(|c: char| c.is_whitespace() || ";|&()`$'\"{}<>".contains(c))
        .any(|word| word == "hey")
}

/// A temporary directory holding a `hey` script that runs this binary's
/// `hey` subcommand; removed when dropped.
#[derive(Debug)]
pub struct HeyShim {
    dir: PathBuf,
}

impl HeyShim {
    /// Writes `<dir>/hey` calling `<exe> hey "$@"`.
    pub fn create(dir: PathBuf, exe: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let quoted = exe.to_string_lossy().replace('\'', r"'\''");
        let script = format!("#!/bin/sh\nexec '{quoted}' hey \"$@\"\n");
        let path = dir.join("hey");
        std::fs::write(&path, script)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { dir })
    }

    /// The shim for the running binary, in a per-process temp directory.
    pub fn for_current_exe() -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let temp = std::env::temp_dir();
        remove_stale_shims(&temp);
        let dir = temp.join(format!("{SHIM_PREFIX}{}", std::process::id()));
        Self::create(dir, &exe)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

const SHIM_PREFIX: &str = "serin-loadtester-";

/// Removes the shims of killed loadtesters (a SIGKILL skips `Drop`).
fn remove_stale_shims(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(SHIM_PREFIX));
        let dead = pid.is_some_and(|pid| {
            pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists()
        });
        if dead {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for HeyShim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct TaskStats {
    pub started: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
}

/// Runs tasks under the `-timeout` limit.
#[derive(Debug)]
pub struct Runner {
    timeout: Duration,
    shim: Option<HeyShim>,
    running: Mutex<HashSet<String>>,
    pub stats: TaskStats,
}

/// What became of an asynchronous task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Started,
    Skipped,
}

impl Runner {
    pub fn new(timeout: Duration, shim: Option<HeyShim>) -> Self {
        Self {
            timeout,
            shim,
            running: Mutex::new(HashSet::new()),
            stats: TaskStats::default(),
        }
    }

    pub fn running(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a `cmd` task in the background unless the same command for the
    /// same canary is still running.
    pub fn submit(self: &Arc<Self>, canary: &str, cmd: &str, log_output: bool) -> Submitted {
        let key = format!("{canary}{cmd}");
        if !self.lock().insert(key.clone()) {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(canary, "command skipped {cmd} is already running");
            return Submitted::Skipped;
        }
        let runner = Arc::clone(self);
        let (canary, cmd) = (canary.to_string(), cmd.to_string());
        tokio::spawn(async move {
            tracing::info!(canary, "task starting {cmd}");
            match runner.run(&Invocation::shell(&cmd)).await {
                Ok(out) => {
                    if log_output {
                        tracing::info!(canary, "{}", String::from_utf8_lossy(&out));
                    }
                    tracing::info!(canary, "command finished {cmd}");
                }
                Err(e) => tracing::error!(canary, "{e}"),
            }
            runner.lock().remove(&key);
        });
        Submitted::Started
    }

    /// Runs one process to completion or until the timeout, returning its
    /// combined output.
    pub async fn run(&self, inv: &Invocation) -> Result<Vec<u8>, TaskError> {
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        let result = self.run_inner(inv).await;
        if result.is_err() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn run_inner(&self, inv: &Invocation) -> Result<Vec<u8>, TaskError> {
        let spawn_error = |source| TaskError::Spawn {
            command: inv.command.clone(),
            program: inv.program.clone(),
            source,
        };
        let (mut reader, writer) = std::io::pipe().map_err(spawn_error)?;
        let writer_err = writer.try_clone().map_err(spawn_error)?;
        let mut command = std::process::Command::new(&inv.program);
        command
            .args(&inv.args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_err)
            // Its own process group, so a timeout kills what the shell started.
            .process_group(0);
        if let Some(shim) = self.shim.as_ref().filter(|_| inv.needs_hey()) {
            let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
            command.env("PATH", format!("{}:{path}", shim.dir().display()));
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        // The Command holds the pipe's write ends; EOF needs them closed.
        drop(command);
        let pid = child.id();
        let mut wait = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let read = reader.read_to_end(&mut out);
            let status = child.wait();
            (out, read.and(status))
        });
        let (out, status) = match tokio::time::timeout(self.timeout, &mut wait).await {
            Ok(joined) => joined.map_err(|e| spawn_error(std::io::Error::other(e)))?,
            Err(_) => {
                kill_group(pid);
                // The output so far, unless a grandchild escaped the group.
                match tokio::time::timeout(Duration::from_secs(5), wait).await {
                    Ok(Ok((out, _))) => (out, Err(std::io::Error::other("killed"))),
                    _ => (Vec::new(), Err(std::io::Error::other("killed"))),
                }
            }
        };
        let failed = |status: String| TaskError::Failed {
            command: inv.command.clone(),
            output: String::from_utf8_lossy(&out).into_owned(),
            status,
        };
        match status {
            Ok(status) if status.success() => Ok(out),
            Ok(status) => Err(failed(go_exit_status(status))),
            Err(_) => {
                let nanos = i64::try_from(self.timeout.as_nanos()).unwrap_or(i64::MAX);
                Err(failed(format!(
                    "signal: killed (timeout {})",
                    serin_actors::duration::go_duration_string(nanos)
                )))
            }
        }
    }
}

fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Go's `ProcessState.String()`: `exit status 2`, `signal: killed`.
pub fn go_exit_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(9) => "signal: killed".into(),
        Some(15) => "signal: terminated".into(),
        Some(2) => "signal: interrupt".into(),
        Some(signal) => format!("signal: {signal}"),
        None => status.to_string(),
    }
}
