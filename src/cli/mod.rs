//! Command line. A bare `serin` (or `serin operator`) is the operator with
//! Flagger's flags (`operator.rs`); `serin demo` the demo.

mod operator;

pub use operator::*;

use clap::{Args, Parser, Subcommand};

/// Serin: progressive delivery for Kubernetes, compatible with Flagger.
#[derive(Debug, Parser)]
#[command(
    name = "serin",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    // Go's flag package lets the last of a repeated flag win.
    args_override_self = true
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
    let mut cli = Cli::try_parse_from(normalize_args(args))?;
    let env = |name: &str| std::env::var(name).ok();
    cli.operator.apply_env(env);
    if let Some(Command::Operator(flags)) = cli.command.as_mut() {
        flags.apply_env(env);
    }
    Ok(cli)
}

#[cfg(test)]
mod tests;
