//! The `serin` binary: the operator (default), the command line's client
//! (`serin get`, `status`, `promote`, ...; also run as the kubectl plugin
//! `kubectl-serin`) and, with the default feature `demo`, the embedded demo.

use std::process::ExitCode;

use serin::cli::{self, Command};
use serin::ctl;
#[cfg(feature = "demo")]
use serin::demo::{self, Scenario};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // As `kubectl serin`, the program is the client: never the operator by
    // default.
    let plugin = args.first().is_some_and(|a| cli::invoked_as_plugin(a));
    let bin = if plugin { "kubectl serin" } else { "serin" };
    if plugin && args.len() <= 1 {
        let _ = cli::command_named(bin).print_help();
        return ExitCode::SUCCESS;
    }
    let client = cli::is_client_command(&args);
    let cli = match cli::parse_as(bin, args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match (e.use_stderr(), client) {
                (false, _) => ExitCode::SUCCESS,
                // The client's exit codes 1 and 2 mean outcomes; 3 is an error.
                (true, true) => ExitCode::from(ctl::Exit::Error.code()),
                (true, false) => ExitCode::from(2),
            };
        }
    };
    let result = match cli.command {
        Some(Command::Client(command)) => return run_client(command),
        #[cfg(feature = "demo")]
        Some(Command::Demo(flags)) => run_demo(flags),
        Some(Command::Operator(flags)) => operator(&flags),
        None if plugin && !cli.operator.version => {
            eprintln!("{}", cli::command_named(bin).render_help());
            return ExitCode::from(2);
        }
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

/// A client command on a single-threaded runtime; its exit code.
fn run_client(command: cli::ClientCommand) -> ExitCode {
    // The same TLS provider as the operator's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("serin: cannot start the tokio runtime: {e}");
            return ExitCode::from(ctl::Exit::Error.code());
        }
    };
    let exit = runtime.block_on(ctl::run(
        command,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ));
    ExitCode::from(exit.code())
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
