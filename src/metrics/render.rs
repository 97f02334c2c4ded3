//! Go `text/template` rendering of MetricTemplate queries.
//!
//! Flagger executes queries with `missingkey=error`, nil data and the canary
//! model exposed as zero-argument functions (`{{ namespace }}`). This renders
//! the subset queries use: those functions, `variables.<key>`, `printf`/`print`,
//! `$x := ...` variables, parentheses, pipes and trim markers. Anything else is
//! a render error naming the construct, never a silent misrender.

use std::collections::{BTreeMap, HashSet};

/// What a query can refer to (Flagger's `MetricTemplateModel`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    pub namespace: String,
    pub target: String,
    pub service: String,
    pub ingress: String,
    pub route: String,
    pub interval: String,
    pub variables: BTreeMap<String, String>,
}

/// Flagger wraps Go's template errors; the `excution` typo is Flagger's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template parsing failed: template: tmpl:{line}: {message}")]
    Parse { line: usize, message: String },
    #[error(
        "template excution failed: template: tmpl:{line}:{col}: executing \"tmpl\" at <{node}>: {message}"
    )]
    Exec {
        line: usize,
        col: usize,
        node: String,
        message: String,
    },
}

/// Renders `template` against `model`.
pub fn render(template: &str, model: &Model) -> Result<String, RenderError> {
    let nodes = parse(template)?;
    let mut out = String::with_capacity(template.len());
    let mut vars: BTreeMap<String, Value> = BTreeMap::from([("$".to_owned(), Value::Nil)]);
    let exec = Exec { model, template };
    for node in &nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Print(pipe) => out.push_str(&exec.pipeline(pipe, &vars)?.to_string()),
            Node::Declare(var, pipe) => {
                let value = exec.pipeline(pipe, &vars)?;
                vars.insert(var.clone(), value);
            }
        }
    }
    Ok(out)
}

const MODEL_FUNCS: [&str; 8] = [
    "name",
    "namespace",
    "target",
    "service",
    "ingress",
    "route",
    "interval",
    "variables",
];
const OTHER_FUNCS: [&str; 2] = ["printf", "print"];
/// Go builtins this renderer does not implement: named so users know why.
const GO_BUILTINS: [&str; 17] = [
    "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge", "html", "js",
    "urlquery", "call", "println",
];
const CONTROL: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

// ---------------------------------------------------------------- values

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(BTreeMap<String, String>),
    Nil,
}

impl Value {
    fn go_type(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
            Value::Nil => "<nil>",
        }
    }
}

impl std::fmt::Display for Value {
    /// Go's `%v`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::Nil => f.write_str("<no value>"),
        }
    }
}

// ---------------------------------------------------------------- syntax

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Print(Pipeline),
    Declare(String, Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    operands: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
struct Operand {
    term: Term,
    fields: Vec<String>,
    /// Byte offset in the template, for error positions.
    pos: usize,
    /// Source text, as Go names the node in execution errors.
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Func(String),
    Var(String),
    Literal(Value),
    Dot,
    Paren(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Var(String),
    Literal(Value),
    Dot,
    Declare,
    Assign,
    Pipe,
    Open,
    Close,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
}

fn line_of(template: &str, pos: usize) -> usize {
    1 + template
        .get(..pos)
        .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count())
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn parse(template: &str) -> Result<Vec<Node>, RenderError> {
    let err = |pos: usize, message: String| RenderError::Parse {
        line: line_of(template, pos),
        message,
    };
    let mut nodes = Vec::new();
    let mut declared: HashSet<String> = HashSet::from(["$".to_owned()]);
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(found) = template[rest..].find("{{") {
        let open = rest + found;
        let mut text = &template[rest..open];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let mut body = open + 2;
        let after = &template[body..];
        if after.starts_with('-') && after[1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            body += 2;
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_owned()));
        }
        if template[body..].starts_with("/*") {
            let (end, trim) = comment(template, body).map_err(|m| err(open, m))?;
            (rest, trim_next) = (end, trim);
            continue;
        }
        let (tokens, end, trim) = lex_action(template, body).map_err(|(pos, m)| err(pos, m))?;
        (rest, trim_next) = (end, trim);
        nodes.push(action(&tokens, template, &mut declared).map_err(|(p, m)| err(p, m))?);
    }
    let mut text = &template[rest..];
    if trim_next {
        text = text.trim_start_matches(is_space);
    }
    if !text.is_empty() {
        nodes.push(Node::Text(text.to_owned()));
    }
    Ok(nodes)
}

/// `{{/* ... */}}`: returns the offset after it and its right trim.
fn comment(template: &str, body: usize) -> Result<(usize, bool), String> {
    let close = template[body..]
        .find("*/")
        .ok_or_else(|| "unclosed comment".to_owned())?
        + body
        + 2;
    let tail = &template[close..];
    if let Some(stripped) = tail.strip_prefix("}}") {
        return Ok((template.len() - stripped.len(), false));
    }
    if let Some(stripped) = tail.strip_prefix(" -}}") {
        return Ok((template.len() - stripped.len(), true));
    }
    Err("comment ends before closing delimiter".to_owned())
}

type LexResult = Result<(Vec<Token>, usize, bool), (usize, String)>;

/// Tokens of one action; returns them, the offset after `}}` and whether
/// the action ends with a right trim marker.
fn lex_action(template: &str, start: usize) -> LexResult {
    let bytes = template.as_bytes();
    let mut tokens = Vec::new();
    let mut i = start;
    loop {
        let before = i;
        while i < bytes.len() && is_space(bytes[i] as char) {
            i += 1;
        }
        if i >= bytes.len() {
            return Err((start, "unclosed action".to_owned()));
        }
        if i > before && template[i..].starts_with("-}}") {
            return Ok((tokens, i + 3, true));
        }
        if template[i..].starts_with("}}") {
            return Ok((tokens, i + 2, false));
        }
        let pos = i;
        let c = bytes[i] as char;
        let tok = match c {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            '(' => {
                i += 1;
                Tok::Open
            }
            ')' => {
                i += 1;
                Tok::Close
            }
            ':' if template[i..].starts_with(":=") => {
                i += 2;
                Tok::Declare
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            '"' => {
                let (s, end) = quoted(template, i).map_err(|m| (pos, m))?;
                i = end;
                Tok::Literal(Value::Str(s))
            }
            '`' => {
                let close = template[i + 1..]
                    .find('`')
                    .ok_or((pos, "unterminated raw quoted string".to_owned()))?;
                let s = template[i + 1..i + 1 + close].to_owned();
                i += close + 2;
                Tok::Literal(Value::Str(s))
            }
            '$' => {
                i += 1 + word_len(&template[i + 1..]);
                Tok::Var(template[pos..i].to_owned())
            }
            '.' => {
                let n = word_len(&template[i + 1..]);
                i += 1 + n;
                if n == 0 {
                    Tok::Dot
                } else {
                    Tok::Field(template[pos + 1..i].to_owned())
                }
            }
            '0'..='9' | '-' | '+' => {
                let n = template[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
                    .unwrap_or(template.len() - i);
                let text = &template[i..i + n];
                i += n;
                if let Ok(v) = text.parse::<i64>() {
                    Tok::Literal(Value::Int(v))
                } else if let Ok(v) = text.parse::<f64>() {
                    Tok::Literal(Value::Float(v))
                } else {
                    return Err((pos, format!("bad number syntax: {text:?}")));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                i += word_len(&template[i..]);
                match &template[pos..i] {
                    "true" => Tok::Literal(Value::Bool(true)),
                    "false" => Tok::Literal(Value::Bool(false)),
                    "nil" => Tok::Literal(Value::Nil),
                    word => Tok::Ident(word.to_owned()),
                }
            }
            other => {
                return Err((pos, format!("unexpected {other:?} in command")));
            }
        };
        tokens.push(Token { tok, pos, end: i });
    }
}

fn word_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// A Go interpreted string literal starting at `start`.
fn quoted(template: &str, start: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = template[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + i + 1)),
            '\n' => break,
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some(other) => return Err(format!("unsupported escape \\{other} in string")),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".to_owned())
}

type ParseResult<T> = Result<T, (usize, String)>;

fn action(tokens: &[Token], template: &str, declared: &mut HashSet<String>) -> ParseResult<Node> {
    let Some(first) = tokens.first() else {
        return Err((0, "missing value for command".to_owned()));
    };
    if let Tok::Ident(word) = &first.tok
        && CONTROL.contains(&word.as_str())
    {
        return Err((
            first.pos,
            format!("{{{{{word}}}}} actions are not supported by Serin's template renderer"),
        ));
    }
    if let [var, op, rest @ ..] = tokens
        && let Tok::Var(name) = &var.tok
        && matches!(op.tok, Tok::Declare | Tok::Assign)
    {
        if op.tok == Tok::Assign && !declared.contains(name) {
            return Err((var.pos, format!("undefined variable {name:?}")));
        }
        let mut parser = Parser {
            tokens: rest,
            at: 0,
            template,
            declared,
        };
        let pipe = parser.pipeline(op.end)?;
        parser.finish()?;
        declared.insert(name.clone());
        return Ok(Node::Declare(name.clone(), pipe));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        template,
        declared,
    };
    let pipe = parser.pipeline(first.pos)?;
    parser.finish()?;
    Ok(Node::Print(pipe))
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    template: &'a str,
    declared: &'a HashSet<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn finish(&self) -> ParseResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err((t.pos, format!("unexpected {:?} in command", t.tok))),
        }
    }

    fn pipeline(&mut self, pos: usize) -> ParseResult<Pipeline> {
        let mut commands = vec![self.command(pos)?];
        while let Some(Token {
            tok: Tok::Pipe,
            pos,
            ..
        }) = self.peek()
        {
            let pos = *pos;
            self.at += 1;
            commands.push(self.command(pos)?);
        }
        Ok(Pipeline { commands })
    }

    fn command(&mut self, pos: usize) -> ParseResult<Command> {
        let mut operands = Vec::new();
        while let Some(t) = self.peek() {
            if matches!(t.tok, Tok::Pipe | Tok::Close) {
                break;
            }
            operands.push(self.operand()?);
        }
        if operands.is_empty() {
            return Err((pos, "missing value for command".to_owned()));
        }
        Ok(Command { operands })
    }

    fn operand(&mut self) -> ParseResult<Operand> {
        let Some(t) = self.peek().cloned() else {
            return Err((0, "missing value for command".to_owned()));
        };
        self.at += 1;
        let mut end = t.end;
        let mut fields = Vec::new();
        let term = match t.tok {
            Tok::Ident(name) => {
                self.known_function(&name, t.pos)?;
                Term::Func(name)
            }
            Tok::Var(name) => {
                if !self.declared.contains(&name) {
                    return Err((t.pos, format!("undefined variable {name:?}")));
                }
                Term::Var(name)
            }
            Tok::Literal(v) => Term::Literal(v),
            Tok::Dot => Term::Dot,
            Tok::Field(f) => {
                fields.push(f);
                Term::Dot
            }
            Tok::Open => {
                let pipe = self.pipeline(t.pos)?;
                match self.peek() {
                    Some(Token {
                        tok: Tok::Close,
                        end: close,
                        ..
                    }) => {
                        end = *close;
                        self.at += 1;
                    }
                    _ => return Err((t.pos, "unclosed left paren".to_owned())),
                }
                Term::Paren(pipe)
            }
            other => return Err((t.pos, format!("unexpected {other:?} in operand"))),
        };
        // `variables.key`: a field chain only when written without a space.
        while let Some(Token {
            tok: Tok::Field(f),
            pos,
            end: field_end,
        }) = self.peek()
        {
            if *pos != end {
                break;
            }
            fields.push(f.clone());
            end = *field_end;
            self.at += 1;
        }
        Ok(Operand {
            term,
            fields,
            pos: t.pos,
            text: self.template.get(t.pos..end).unwrap_or_default().to_owned(),
        })
    }

    fn known_function(&self, name: &str, pos: usize) -> ParseResult<()> {
        if MODEL_FUNCS.contains(&name) || OTHER_FUNCS.contains(&name) {
            Ok(())
        } else if GO_BUILTINS.contains(&name) {
            Err((
                pos,
                format!("function {name:?} is not supported by Serin's template renderer"),
            ))
        } else if CONTROL.contains(&name) {
            Err((pos, format!("unexpected <{name}> in command")))
        } else {
            Err((pos, format!("function {name:?} not defined")))
        }
    }
}

// ---------------------------------------------------------------- execution

struct Exec<'a> {
    model: &'a Model,
    template: &'a str,
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

    fn pipeline(&self, pipe: &Pipeline, vars: &BTreeMap<String, Value>) -> ExecResult {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            name: "podinfo".into(),
            namespace: "test".into(),
            target: "podinfo".into(),
            service: "podinfo-svc".into(),
            ingress: "podinfo-ing".into(),
            route: "podinfo-route".into(),
            interval: "1m".into(),
            variables: BTreeMap::from([("direction".to_owned(), "inbound".to_owned())]),
        }
    }

    fn ok(t: &str) -> String {
        render(t, &model()).unwrap()
    }

    fn err(t: &str) -> String {
        render(t, &model()).unwrap_err().to_string()
    }

    #[test]
    fn model_functions() {
        assert_eq!(
            ok(
                "{{ name }} {{namespace}} {{ target }} {{ service }} {{ ingress }} {{ route }} [{{ interval }}]"
            ),
            "podinfo test podinfo podinfo-svc podinfo-ing podinfo-route [1m]"
        );
        assert_eq!(ok("no actions {here}"), "no actions {here}");
    }

    #[test]
    fn variables_and_missing_keys() {
        assert_eq!(
            ok(r#"direction="{{ variables.direction }}""#),
            r#"direction="inbound""#
        );
        assert_eq!(
            err("a\n  {{ variables.missing }}"),
            "template excution failed: template: tmpl:2:5: executing \"tmpl\" at <variables.missing>: map has no entry for key \"missing\""
        );
        assert_eq!(ok("{{ variables }}"), "map[direction:inbound]");
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(ok("a  \n {{- name -}} \n b"), "apodinfob");
        assert_eq!(ok("a {{/* why */}} b"), "a  b");
        assert_eq!(ok("a {{- /* why */ -}} b"), "ab");
    }

    #[test]
    fn printf_and_variables() {
        assert_eq!(
            ok(
                r#"{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}x{{ $route }}"#
            ),
            "xkube(ew)?_test__podinfo-ing_canary__.*__podinfo-svc_canary(_[0-9]+)?"
        );
        assert_eq!(
            ok(r#"{{ printf "%d-%v-%s" 3 name 4 }}"#),
            "3-podinfo-%!s(int=4)"
        );
        assert_eq!(ok(r#"{{ printf "%s %s" name }}"#), "podinfo %!s(MISSING)");
        assert_eq!(ok(r#"{{ printf "%s" name 1 }}"#), "podinfo%!(EXTRA int=1)");
        assert_eq!(ok(r#"{{ printf "%d%%" 5 }}"#), "5%");
        assert_eq!(ok(r#"{{ name | printf "%s-canary" }}"#), "podinfo-canary");
        assert_eq!(ok(r#"{{ (printf "%s" target) }}"#), "podinfo");
        assert_eq!(ok(r#"{{ $x := "a" }}{{ $x = "b" }}{{ $x }}"#), "b");
        assert_eq!(ok(r#"{{ print "a" 1 2 "b" }}"#), "a1 2b");
        assert_eq!(ok("{{ `raw \\n` }}"), "raw \\n");
    }

    /// Every MetricTemplate in Flagger's docs renders, whatever its provider.
    #[test]
    fn flagger_doc_templates_render() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/flagger-compat/manifests"
        );
        let mut rendered = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if !file.contains("metrictemplate") {
                continue;
            }
            let yaml = std::fs::read_to_string(&path).unwrap();
            let template: crate::api::MetricTemplate = crate::api::from_yaml_str(&yaml).unwrap();
            let out =
                render(&template.spec.query, &model()).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!out.contains("{{"), "{file}: {out}");
            rendered.insert(file, out);
        }
        assert!(rendered.len() >= 20, "{}", rendered.len());
        let skipper = rendered
            .iter()
            .find(|(f, _)| f.contains("skipper"))
            .map(|(_, q)| q.clone())
            .unwrap();
        assert!(skipper.contains(
            r#"route=~"kube(ew)?_test__podinfo-ing_canary__.*__podinfo-svc_canary(_[0-9]+)?","#
        ));
        let linkerd = rendered
            .iter()
            .find(|(f, _)| f.contains("linkerd-progressive-delivery--metrictemplate-latency"))
            .map(|(_, q)| q.clone())
            .unwrap();
        assert!(linkerd.contains(r#"direction="inbound""#));
        let graphite = rendered
            .iter()
            .find(|(f, _)| f.contains("graphite"))
            .map(|(_, q)| q.clone())
            .unwrap();
        assert!(graphite.contains("app.podinfo.exception.*.method.*.outcome.{CLIENT_ERROR,"));
        assert!(graphite.contains("\n  1m,\n"));
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        assert_eq!(
            err("{{ if name }}x{{ end }}"),
            "template parsing failed: template: tmpl:1: {{if}} actions are not supported by Serin's template renderer"
        );
        assert_eq!(
            err("\n{{ foo }}"),
            "template parsing failed: template: tmpl:2: function \"foo\" not defined"
        );
        assert!(err(r#"{{ eq name "x" }}"#).contains("function \"eq\" is not supported"));
        assert!(err("{{ $y }}").contains("undefined variable \"$y\""));
        assert!(err("{{ name ").contains("unclosed action"));
        assert!(err(r#"{{ printf "%x" 1 }}"#).contains("printf verb %x is not supported"));
        assert!(err("{{ name 1 }}").contains("wrong number of args for name: want 0 got 1"));
        assert!(err("{{ name.x }}").contains("can't evaluate field x in type string"));
        assert!(err("{{ }}").contains("missing value for command"));
        assert!(err("{{ 'c' }}").contains("unexpected"));
    }
}
