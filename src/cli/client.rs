//! The client's commands (`serin get`, `status`, `promote`, ...): clap's
//! definitions only; `crate::ctl` runs them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

/// First arguments that name a client command (see `is_client_command`).
pub const CLIENT_COMMANDS: &[&str] = &[
    "get",
    "status",
    "promote",
    "abort",
    "retry",
    "pause",
    "resume",
    "completion",
    "lint",
];

#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Show canaries: a table, one canary's analysis, or their objects.
    #[command(after_help = GET_EXAMPLES)]
    Get(GetArgs),
    /// Wait for the current run of a canary to end; the exit code says how.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Skip the rest of the analysis and promote the canary now.
    #[command(after_help = PROMOTE_EXAMPLES)]
    Promote(RequestArgs),
    /// Roll the canary back now.
    #[command(after_help = ABORT_EXAMPLES)]
    Abort(RequestArgs),
    /// Run the analysis of a failed canary's revision again.
    #[command(after_help = RETRY_EXAMPLES)]
    Retry(RequestArgs),
    /// Suspend the canary (spec.suspend: true): no run starts or advances.
    #[command(after_help = PAUSE_EXAMPLES)]
    Pause(NameArgs),
    /// Resume a paused canary (spec.suspend: false).
    #[command(after_help = RESUME_EXAMPLES)]
    Resume(NameArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
    /// Check Canary, MetricTemplate and AlertProvider manifests offline.
    #[command(after_help = LINT_EXAMPLES)]
    Lint(LintArgs),
}

/// How to reach the cluster, as kubectl does.
#[derive(Debug, Clone, Default, Args, PartialEq)]
pub struct Connection {
    /// Kubeconfig file (else $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (else the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace (else the context's, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Args, PartialEq)]
pub struct GetArgs {
    /// `canaries` or `canary` (also `canary/NAME`).
    #[arg(value_name = "RESOURCE")]
    pub resource: String,
    /// One canary: its analysis in detail.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
    /// List canaries in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print the objects as the API server returns them.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Redraw on every change of the canary, its events or its workloads.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// With --watch: stop after this long (e.g. `90s`, `10m`), exit 0.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Args, PartialEq)]
pub struct StatusArgs {
    /// The canary's name.
    pub name: String,
    #[command(flatten)]
    pub connection: Connection,
    /// Give up after this long (e.g. `90s`, `10m`) with exit code 2.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Args, PartialEq)]
pub struct RequestArgs {
    /// The canary's name.
    pub name: String,
    #[command(flatten)]
    pub connection: Connection,
    /// How long to wait for the operator's answer.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub wait: Duration,
}

#[derive(Debug, Clone, Args, PartialEq)]
pub struct NameArgs {
    /// The canary's name.
    pub name: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args, PartialEq)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `serin lint`'s flags.
#[derive(Debug, Clone, Args, PartialEq)]
pub struct LintArgs {
    /// Manifests to check: files, directories, or `-` for standard input.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<String>,
    /// The operator's -mesh-provider, for canaries without spec.provider.
    #[arg(long, default_value = "istio")]
    pub mesh_provider: String,
}

/// Go-style durations (`90s`, `10m`, `1h30m`), as Flagger's fields take them.
fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse_duration(text).map_err(|e| e.to_string())
}

const GET_EXAMPLES: &str = "\
Examples:
  serin get canaries -n test          # STATUS, WEIGHT, ..., TARGET, PROVIDER, NEXT
  serin get canaries -A               # all namespaces
  serin get canaries -o yaml          # a List of the Canary objects
  serin get canary podinfo -n test    # phase, weight, step, checks, revisions, events
  serin get canary podinfo -w         # redraw on every change (Ctrl-C to stop)
  serin get canary podinfo -o json";

const STATUS_HELP: &str = "\
Exit codes:
  0  the run succeeded, or the canary is idle (Initialized, Succeeded) with
     no new revision pending
  1  the run failed (Failed)
  2  --timeout passed first
  3  an error: the canary does not exist, the API server failed, bad usage

Examples:
  kubectl -n test set image deployment/podinfo podinfod=ghcr.io/stefanprodan/podinfo:6.0.1
  serin status podinfo -n test --timeout 10m";

const PROMOTE_EXAMPLES: &str = "\
Writes a request (annotation serin.dev/request) that the operator acts on,
then waits for its answer. Exit codes: 0 accepted, 1 refused, 2 no answer
within --wait, 3 an error.

Examples:
  serin promote podinfo -n test";

const ABORT_EXAMPLES: &str = "\
Exit codes: 0 accepted, 1 refused, 2 no answer within --wait, 3 an error.

Examples:
  serin abort podinfo -n test";

const RETRY_EXAMPLES: &str = "\
Exit codes: 0 accepted, 1 refused, 2 no answer within --wait, 3 an error.

Examples:
  serin retry podinfo -n test --wait 1m";

const PAUSE_EXAMPLES: &str = "\
Examples:
  serin pause podinfo -n test";

const RESUME_EXAMPLES: &str = "\
Examples:
  serin resume podinfo -n test";

const LINT_EXAMPLES: &str = "\
Checks what the API server (Serin's CRDs) and the operator would refuse:
the schema, durations, providers, references between the given files and
MetricTemplate queries that must render. One line per finding,
file:line: field: message (warnings say so and do not fail).
Exit codes: 0 no error, 1 errors, 3 a file could not be read.

Examples:
  serin lint -f canary.yaml
  serin lint -f deploy/ -f templates.yaml --mesh-provider nginx
  kustomize build overlays/prod | serin lint -f -";

const COMPLETION_EXAMPLES: &str = "\
Examples:
  source <(serin completion bash)
  serin completion zsh > \"${fpath[1]}/_serin\"
  serin completion fish > ~/.config/fish/completions/serin.fish";
