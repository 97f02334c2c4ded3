//! The `serin` binary: the operator (default) and, with the default
//! feature `demo`, the embedded demo.

use std::process::ExitCode;

use serin::cli::{self, Command};
#[cfg(feature = "demo")]
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
        #[cfg(feature = "demo")]
        Some(Command::Demo(flags)) => run_demo(flags),
        Some(Command::Operator(flags)) => operator(&flags),
        None => operator(&cli.operator),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serin: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "demo")]
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
        println!("{}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    serin::logging::init(&flags.log_level, std::io::stderr)?;
    // One TLS provider for kube and reqwest (both built without a default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Watches, HTTP and clients run on the multi-thread runtime; canary
    // actors on their own arbiters.
    let system = actix::System::with_tokio_rt(|| match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("serin: cannot start the tokio runtime: {e}");
            std::process::exit(1)
        }
    });
    let flags = flags.clone();
    system.block_on(serin::operator::run(flags))?;
    Ok(())
}
