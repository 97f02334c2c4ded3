//! `serin lint`: offline validation of Flagger manifests with the rules the
//! operator applies: the API server's schema check against Serin's CRDs,
//! the typed parse, the operator's own checks (durations, router, spec
//! mapping), and references between the given objects (MetricTemplates are
//! rendered for the Canaries that use them).
//!
//! Findings print as `file:line: field: message` (`warning: ` before the
//! message of a warning); warnings do not change the exit code.

mod canary;
mod document;
pub mod input;
pub mod lines;
mod objects;
mod refs;
pub mod report;
pub mod schema;
mod structural;
#[cfg(test)]
mod tests;

use std::io::Write;

pub use input::{Input, InputError, STDIN_NAME};
pub use report::{Finding, Report, Severity};
pub use schema::{Schemas, Violation};

use document::Doc;

/// The operator's `-mesh-provider` default.
pub const DEFAULT_MESH_PROVIDER: &str = "istio";

/// Lints the given paths (files, directories read recursively for *.yaml/*.yml, or "-" for stdin),
/// writes findings to `out`, one per line, and returns the process exit code (0: no error, 1: errors, 3: could not read
/// input or write the report, as the other client commands' errors).
pub fn run(paths: &[String], mesh_provider: &str, out: &mut dyn Write) -> i32 {
    run_with_stdin(paths, mesh_provider, &mut std::io::stdin().lock(), out)
}

/// [`run`] reading `-` from `stdin`.
pub fn run_with_stdin(
    paths: &[String],
    mesh_provider: &str,
    stdin: &mut dyn std::io::Read,
    out: &mut dyn Write,
) -> i32 {
    let inputs = match input::read(paths, stdin) {
        Ok(inputs) => inputs,
        Err(err) => {
            // Nothing useful can follow a failed write of this line either.
            let _ = writeln!(out, "{err}");
            return 3;
        }
    };
    let report = lint_documents(&inputs, mesh_provider);
    if report.write_to(out).is_err() {
        return 3;
    }
    report.exit_code()
}

/// Lints files already read; `mesh_provider` stands for a Canary's empty
/// `spec.provider` (the operator's `-mesh-provider`; empty means `istio`).
pub fn lint_documents(inputs: &[Input], mesh_provider: &str) -> Report {
    let mesh_provider = if mesh_provider.is_empty() {
        DEFAULT_MESH_PROVIDER
    } else {
        mesh_provider
    };
    let mut report = Report::default();
    let schemas = match Schemas::serin() {
        Ok(schemas) => schemas,
        Err(err) => {
            // Serin's own CRDs are tested to load; say so if they do not.
            report.findings.push(Finding {
                file: inputs.first().map(|i| i.name.clone()).unwrap_or_default(),
                line: 1,
                field: "(root)".into(),
                severity: Severity::Error,
                message: format!("Serin's CRD schemas could not be loaded: {err}"),
            });
            return report;
        }
    };
    let mut objects = Vec::new();
    for input in inputs {
        let split = input::split(&input.text);
        for error in split.errors {
            report.findings.push(Finding {
                file: input.name.clone(),
                line: error.line,
                field: "<document>".into(),
                severity: Severity::Error,
                message: error.message,
            });
        }
        for document in split.documents {
            if document.value.is_null() {
                continue;
            }
            report.documents += 1;
            let doc = Doc::new(&input.name, document);
            if let Some(object) =
                document::check(doc, &schemas, mesh_provider, &mut report.findings)
            {
                objects.push(object);
            }
        }
    }
    refs::check(&objects, &mut report.findings);
    let order = |file: &str| inputs.iter().position(|i| i.name == file).unwrap_or(0);
    report.sort(order);
    report
}
