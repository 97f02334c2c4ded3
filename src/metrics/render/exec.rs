//! Execution of the parse tree against the model, and Go's `fmt` verbs.

use std::collections::BTreeMap;

use super::lexer::line_of;
use super::parse::{Command, Operand, Pipeline, Term};
use super::{Model, RenderError, Value};

pub(super) struct Exec<'a> {
    pub(super) model: &'a Model,
    pub(super) template: &'a str,
}

type ExecResult = Result<Value, RenderError>;

impl Exec<'_> {
    fn fail(&self, op: &Operand, message: String) -> RenderError {
        let before = self.template.get(..op.pos).unwrap_or_default();
        let col = before.rfind('\n').map_or(op.pos, |nl| op.pos - nl - 1);
        RenderError::Exec {
            line: line_of(self.template, op.pos),
            col,
            node: op.text.clone(),
            message,
        }
    }

    pub(super) fn pipeline(&self, pipe: &Pipeline, vars: &BTreeMap<String, Value>) -> ExecResult {
        let mut piped = None;
        for command in &pipe.commands {
            piped = Some(self.command(command, piped, vars)?);
        }
        Ok(piped.unwrap_or(Value::Nil))
    }

    fn command(
        &self,
        command: &Command,
        piped: Option<Value>,
        vars: &BTreeMap<String, Value>,
    ) -> ExecResult {
        let Some((head, rest)) = command.operands.split_first() else {
            return Ok(Value::Nil);
        };
        if let Term::Func(name) = &head.term
            && head.fields.is_empty()
        {
            let mut args = rest
                .iter()
                .map(|op| self.operand(op, vars))
                .collect::<Result<Vec<_>, _>>()?;
            args.extend(piped);
            return self.call(head, name, &args);
        }
        if !rest.is_empty() || piped.is_some() {
            return Err(self.fail(
                head,
                format!("can't give argument to non-function {}", head.text),
            ));
        }
        self.operand(head, vars)
    }

    fn operand(&self, op: &Operand, vars: &BTreeMap<String, Value>) -> ExecResult {
        let mut value = match &op.term {
            Term::Func(name) => self.call(op, name, &[])?,
            Term::Var(name) => vars.get(name).cloned().unwrap_or(Value::Nil),
            Term::Literal(v) => v.clone(),
            Term::Dot => Value::Nil,
            Term::Paren(pipe) => self.pipeline(pipe, vars)?,
        };
        for field in &op.fields {
            value = match value {
                Value::Map(map) => match map.get(field) {
                    Some(v) => Value::Str(v.clone()),
                    None => {
                        return Err(self.fail(op, format!("map has no entry for key {field:?}")));
                    }
                },
                Value::Nil => {
                    return Err(self.fail(op, format!("nil data; no entry for key {field:?}")));
                }
                other => {
                    return Err(self.fail(
                        op,
                        format!("can't evaluate field {field} in type {}", other.go_type()),
                    ));
                }
            };
        }
        Ok(value)
    }

    fn call(&self, op: &Operand, name: &str, args: &[Value]) -> ExecResult {
        let m = self.model;
        let field = match name {
            "name" => &m.name,
            "namespace" => &m.namespace,
            "target" => &m.target,
            "service" => &m.service,
            "ingress" => &m.ingress,
            "route" => &m.route,
            "interval" => &m.interval,
            "variables" => {
                return self
                    .no_args(op, name, args)
                    .map(|()| Value::Map(m.variables.clone()));
            }
            "print" => return Ok(Value::Str(sprint(args))),
            "printf" => {
                return match args.split_first() {
                    Some((Value::Str(format), rest)) => sprintf(format, rest)
                        .map(Value::Str)
                        .map_err(|e| self.fail(op, e)),
                    Some((other, _)) => Err(self.fail(
                        op,
                        format!(
                            "wrong type for value; expected string; got {}",
                            other.go_type()
                        ),
                    )),
                    None => Err(self.fail(
                        op,
                        "wrong number of args for printf: want at least 1 got 0".to_owned(),
                    )),
                };
            }
            other => return Err(self.fail(op, format!("function {other:?} not defined"))),
        };
        self.no_args(op, name, args)?;
        Ok(Value::Str(field.clone()))
    }

    fn no_args(&self, op: &Operand, name: &str, args: &[Value]) -> Result<(), RenderError> {
        if args.is_empty() {
            Ok(())
        } else {
            Err(self.fail(
                op,
                format!("wrong number of args for {name}: want 0 got {}", args.len()),
            ))
        }
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !matches!(arg, Value::Str(_)) && !matches!(args.get(i - 1), Some(Value::Str(_)))
        {
            out.push(' ');
        }
        out.push_str(&arg.to_string());
    }
    out
}

/// Go's `fmt.Sprintf` for `%s`, `%v`, `%d`, `%q`, `%f` (with precision) and `%%`,
/// including Go's in-band `%!verb(type=value)` texts for mismatches.
fn sprintf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = Some(digits.parse::<usize>().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !"svdqf".contains(verb) {
            return Err(format!(
                "printf verb %{verb} is not supported by Serin's template renderer"
            ));
        }
        let Some(arg) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let bad = || format!("%!{verb}({}={arg})", arg.go_type());
        let text = match (verb, arg) {
            ('v', v) => v.to_string(),
            ('s', Value::Str(_) | Value::Map(_)) => arg.to_string(),
            ('s', Value::Nil) => "%!s(<nil>)".to_owned(),
            ('d', Value::Int(i)) => i.to_string(),
            ('q', Value::Str(s)) => format!("{s:?}"),
            ('f', Value::Float(x)) => format!("{x:.*}", precision.unwrap_or(6)),
            _ => bad(),
        };
        out.push_str(&text);
    }
    let extra: Vec<String> = next.map(|a| format!("{}={a}", a.go_type())).collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}
