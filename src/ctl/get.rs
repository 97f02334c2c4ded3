//! `serin get canaries` (a table or a List) and `serin get canary NAME`
//! (the view, once or `--watch`ed, or the object).

use std::io::{IsTerminal, Write};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;

use crate::api::canary::Canary;
use crate::cli::{GetArgs, OutputFormat};

use super::watch::{self, Observed, Watched};
use super::{
    CtlError, Exit, Outcome, Session, canaries, connect, events, output, table, view, workloads,
};

/// What `get`'s arguments ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    List,
    One(String),
}

/// `canaries`, `canary` (with kubectl's `.flagger.app` forms), optionally
/// `canary/NAME`, and a NAME argument.
pub fn target(args: &GetArgs) -> Result<Target, CtlError> {
    let (resource, inline) = match args.resource.split_once('/') {
        Some((resource, name)) => (resource, Some(name.to_string())),
        None => (args.resource.as_str(), None),
    };
    let resource = resource.strip_suffix(".flagger.app").unwrap_or(resource);
    if !matches!(resource, "canaries" | "canary") {
        return Err(CtlError::Usage(format!(
            "serin gets canaries, not \"{}\" (serin get canaries, serin get canary NAME)",
            args.resource
        )));
    }
    let name = match (inline, args.name.clone()) {
        (Some(_), Some(_)) => {
            return Err(CtlError::Usage(
                "give the name once: canary/NAME or canary NAME".into(),
            ));
        }
        (a, b) => a.or(b).filter(|n| !n.is_empty()),
    };
    match name {
        Some(_) if args.all_namespaces => Err(CtlError::Usage(
            "a canary cannot be retrieved by name across all namespaces".into(),
        )),
        Some(name) => Ok(Target::One(name)),
        None if args.watch => Err(CtlError::Usage("--watch needs a canary's name".into())),
        None => Ok(Target::List),
    }
}

pub async fn run(args: &GetArgs, out: &mut dyn Write) -> Result<Outcome, CtlError> {
    let target = target(args)?;
    let session = connect::connect(&args.connection).await?;
    match target {
        Target::List => list(&session, args, out).await,
        Target::One(name) if args.watch => watch(&session, &name, args, out).await,
        Target::One(name) => one(&session, &name, args.output, out).await,
    }
}

async fn list(session: &Session, args: &GetArgs, out: &mut dyn Write) -> Result<Outcome, CtlError> {
    let items = canaries::list_raw(session, args.all_namespaces).await?;
    if let Some(format) = args.output {
        out.write_all(output::encode(&output::list(items), format)?.as_bytes())?;
        return Ok(Outcome::ok());
    }
    if items.is_empty() {
        let place = if args.all_namespaces {
            String::new()
        } else {
            format!(" in {} namespace", session.namespace)
        };
        return Ok(Outcome::with(
            Exit::Ok,
            format!("No resources found{place}."),
        ));
    }
    let typed: Vec<Canary> = items
        .iter()
        .map(canaries::typed)
        .collect::<Result<_, _>>()?;
    out.write_all(table::render(&typed, args.all_namespaces, Timestamp::now()).as_bytes())?;
    Ok(Outcome::ok())
}

async fn one(
    session: &Session,
    name: &str,
    format: Option<OutputFormat>,
    out: &mut dyn Write,
) -> Result<Outcome, CtlError> {
    let raw = canaries::get_raw(session, name).await?;
    if let Some(format) = format {
        out.write_all(output::encode(&raw, format)?.as_bytes())?;
        return Ok(Outcome::ok());
    }
    let canary = canaries::typed(&raw)?;
    let target_ref = &canary.spec.target_ref;
    let primary_name = workloads::primary_name(target_ref);
    let observed = Observed {
        events: events::list(&session.client, &session.namespace, name)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("{i:08}"), e))
            .collect(),
        primary: workloads::get(
            &session.client,
            &session.namespace,
            target_ref,
            &primary_name,
        )
        .await?,
        target: workloads::get(
            &session.client,
            &session.namespace,
            target_ref,
            &target_ref.name,
        )
        .await?,
        canary: Some(canary),
        ..Default::default()
    };
    out.write_all(frame(&observed, Timestamp::now()).as_bytes())?;
    Ok(Outcome::ok())
}

/// The view of what the watches saw.
pub fn frame(observed: &Observed, now: Timestamp) -> String {
    let Some(canary) = observed.canary.as_ref() else {
        return "the canary was deleted\n".to_string();
    };
    let primary = observed.primary.as_ref().map(workloads::Workload::view);
    let target = observed.target.as_ref().map(workloads::Workload::view);
    let events = observed.events();
    view::render(&view::ViewInput {
        canary,
        events: &events,
        primary: primary.as_ref(),
        target: target.as_ref(),
        now,
    })
}

/// ANSI: cursor home, clear the screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Redraws the view on every change until `--timeout` (exit 0) or Ctrl-C.
/// On a terminal the screen is redrawn (and ages tick every second);
/// otherwise each frame that differs from the last one printed follows a
/// `---` line. With `-o`, each new state of the Canary is printed.
async fn watch(
    session: &Session,
    name: &str,
    args: &GetArgs,
    out: &mut dyn Write,
) -> Result<Outcome, CtlError> {
    let canary = canaries::get(session, name).await?;
    let target_ref = canary.spec.target_ref.clone();
    let watched = if args.output.is_some() {
        Watched {
            events: false,
            primary: false,
            target: false,
        }
    } else {
        Watched {
            events: true,
            primary: true,
            target: true,
        }
    };
    let mut changes = watch::changes(session, name, &target_ref, watched);
    let tty = args.output.is_none() && std::io::stdout().is_terminal();
    let deadline = args
        .timeout
        .map(|t| tokio::time::Instant::from(Instant::now() + t));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut observed = Observed::default();
    let mut printed: Option<Observed> = None;
    let mut shown = String::new();
    loop {
        tokio::select! {
            change = changes.next() => match change {
                None => return Ok(Outcome::ok()),
                Some(change) => observed.apply(change),
            },
            () = sleep_until(deadline) => return Ok(Outcome::ok()),
            _ = tick.tick(), if tty => {}
        }
        if !observed.ready(watched, &target_ref) {
            continue;
        }
        let now = Timestamp::now();
        if let Some(format) = args.output {
            if printed
                .as_ref()
                .is_some_and(|p| p.canary == observed.canary)
            {
                continue;
            }
            if let Some(c) = observed.canary.as_ref() {
                let value = serde_json::to_value(c).map_err(|e| CtlError::Encode(e.to_string()))?;
                if printed.is_some() && format == OutputFormat::Yaml {
                    out.write_all(b"---\n")?;
                }
                out.write_all(output::encode(&value, format)?.as_bytes())?;
            }
        } else if tty {
            let text = frame(&observed, now);
            if text != shown {
                out.write_all(format!("{CLEAR}{text}").as_bytes())?;
                shown = text;
            }
        } else {
            // A frame differs when its content does, not its ages: the last
            // printed state is drawn again at the same time to compare.
            let text = frame(&observed, now);
            let same = printed.as_ref().is_some_and(|p| frame(p, now) == text);
            if same {
                continue;
            }
            if printed.is_some() {
                out.write_all(b"---\n")?;
            }
            out.write_all(text.as_bytes())?;
        }
        out.flush()?;
        printed = Some(observed.clone());
        if observed.canary.is_none() {
            return Ok(Outcome::with(
                Exit::Ok,
                format!("{name}.{} was deleted", session.namespace),
            ));
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
