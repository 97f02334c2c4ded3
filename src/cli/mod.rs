//! Command line. A bare `serin` (or `serin operator`) is the operator with
//! Flagger's flags (`operator.rs`); the other subcommands are the client
//! (`client.rs`, run by `crate::ctl`) and the demo.

mod client;
mod operator;

pub use client::*;
pub use operator::*;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Serin: progressive delivery for Kubernetes, compatible with Flagger.
#[derive(Debug, Parser)]
#[command(
    name = "serin",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    // Go's flag package lets the last of a repeated flag win.
    args_override_self = true,
    after_help = "Without a command, serin runs the operator with these flags.\n\
                  `serin <command> --help` shows a command's flags and examples."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the default mode, the operator.
    #[command(flatten)]
    pub operator: OperatorFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator (the default when no subcommand is given).
    Operator(Box<OperatorFlags>),
    /// Replay Flagger's NGINX walkthrough on the in-memory simulated cluster.
    #[cfg(feature = "demo")]
    Demo(DemoFlags),
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Clone, Args)]
pub struct DemoFlags {
    /// One scenario: promote, rollback-errors or rollback-latency.
    #[arg(long, value_parser = ["promote", "rollback-errors", "rollback-latency"])]
    pub scenario: Option<String>,
    /// Run this many canaries at once (a mix of good and faulty revisions).
    #[arg(long)]
    pub canaries: Option<usize>,
}

/// The program name under which kubectl runs a plugin (`kubectl serin`).
pub const PLUGIN_NAME: &str = "kubectl-serin";

/// Whether argv[0] names the kubectl plugin (`kubectl-serin`, a symlink).
pub fn invoked_as_plugin(argv0: &str) -> bool {
    std::path::Path::new(argv0)
        .file_stem()
        .is_some_and(|name| name == PLUGIN_NAME)
}

/// Whether the first argument names a client command: then the arguments
/// are clap's as written, and `-oyaml` stays a short flag with its value.
pub fn is_client_command(args: &[String]) -> bool {
    args.get(1)
        .is_some_and(|first| CLIENT_COMMANDS.contains(&first.as_str()))
}

/// Rewrites Go-style single-dash long flags (`-kubeconfig-qps=5`) to the
/// double-dash form clap parses. Short options and plain values are left
/// alone; everything after a bare `--` is too.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if passthrough || arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let name = arg.split('=').next().unwrap_or_default();
        let single_dash_long = name.len() > 2 && name.starts_with('-') && !name.starts_with("--");
        if single_dash_long
            && name[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// Parses the process arguments, then applies Flagger's environment overrides.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, clap::Error> {
    parse_as("serin", args)
}

/// [`parse`] with the name help and errors show (`kubectl serin` for the
/// plugin). Go-style flags are rewritten only for the operator and the demo.
pub fn parse_as<I: IntoIterator<Item = String>>(
    bin_name: &str,
    args: I,
) -> Result<Cli, clap::Error> {
    let args: Vec<String> = args.into_iter().collect();
    let args = if is_client_command(&args) {
        args
    } else {
        normalize_args(args)
    };
    let matches = command_named(bin_name).try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let env = |name: &str| std::env::var(name).ok();
    cli.operator.apply_env(env);
    if let Some(Command::Operator(flags)) = cli.command.as_mut() {
        flags.apply_env(env);
    }
    Ok(cli)
}

/// The clap command, shown as `bin_name` in usage lines.
pub fn command_named(bin_name: &str) -> clap::Command {
    Cli::command().bin_name(bin_name.to_string())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_client;
