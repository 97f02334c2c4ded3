//! The parse tree: text, print and declare actions of pipelines of commands.

use std::collections::HashSet;

use super::lexer::{Tok, Token, comment, is_space, lex_action, line_of};
use super::{RenderError, Value};

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

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Text(String),
    Print(Pipeline),
    Declare(String, Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipeline {
    pub(super) commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Command {
    pub(super) operands: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Operand {
    pub(super) term: Term,
    pub(super) fields: Vec<String>,
    /// Byte offset in the template, for error positions.
    pub(super) pos: usize,
    /// Source text, as Go names the node in execution errors.
    pub(super) text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Term {
    Func(String),
    Var(String),
    Literal(Value),
    Dot,
    Paren(Pipeline),
}

pub(super) fn parse(template: &str) -> Result<Vec<Node>, RenderError> {
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
