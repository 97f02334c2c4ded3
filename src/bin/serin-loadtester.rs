//! `serin-loadtester`: a drop-in for flagger-loadtester. `serin-loadtester
//! hey ...` is the bundled load generator the task commands call.

use std::process::ExitCode;

use serin::loadtester::{self, Flags, hey};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("hey") {
        run_hey(&args[2..])
    } else {
        match Flags::parse_args(args) {
            Ok(flags) => serve(flags),
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serin-loadtester: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_hey(args: &[String]) -> anyhow::Result<()> {
    let opts = hey::parse_args(args)?;
    let report = runtime()?.block_on(hey::run(&opts))?;
    print!("{}", report.render());
    Ok(())
}

fn serve(flags: Flags) -> anyhow::Result<()> {
    if flags.zap_encoding == "console" {
        tracing_subscriber::fmt()
            .with_env_filter(serin::logging::filter(&flags.log_level)?)
            .with_writer(std::io::stderr)
            .init();
    } else {
        serin::logging::init(&flags.log_level, std::io::stderr)?;
    }
    runtime()?.block_on(loadtester::run(flags))?;
    Ok(())
}
