//! The `serin` binary: the operator (default) and the embedded demo.

use std::process::ExitCode;

use serin::cli::{self, Command};
use serin::demo::{self, Scenario};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Some(Command::Demo(flags)) => run_demo(flags),
        Some(Command::Operator(flags)) => operator(&flags),
        None => operator(&cli.operator),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_demo(flags: cli::DemoFlags) -> anyhow::Result<()> {
    if let Some(count) = flags.canaries {
        let system = actix::System::new();
        let arbiters = std::thread::available_parallelism().map_or(2, |n| n.get());
        return Ok(system.block_on(demo::fleet::run(count, arbiters))?);
    }
    let scenarios: Vec<Scenario> = match flags.scenario.as_deref() {
        Some(name) => {
            vec![Scenario::parse(name).ok_or_else(|| anyhow::anyhow!("unknown scenario {name}"))?]
        }
        None => Scenario::ALL.to_vec(),
    };
    Ok(demo::run_scenarios(&scenarios)?)
}

fn operator(flags: &cli::OperatorFlags) -> anyhow::Result<()> {
    if flags.version {
        println!("Serin version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    anyhow::bail!(
        "the operator mode is not built yet (it connects the engine to Kubernetes in a later release); \
         try `serin demo`"
    )
}
