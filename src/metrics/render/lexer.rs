//! Tokens of one `{{ ... }}` action, comments and string literals.

use super::Value;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
    pub(super) end: usize,
}

pub(super) fn line_of(template: &str, pos: usize) -> usize {
    1 + template
        .get(..pos)
        .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count())
}

pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `{{/* ... */}}`: returns the offset after it and its right trim.
pub(super) fn comment(template: &str, body: usize) -> Result<(usize, bool), String> {
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

pub(super) type LexResult = Result<(Vec<Token>, usize, bool), (usize, String)>;

/// Tokens of one action; returns them, the offset after `}}` and whether
/// the action ends with a right trim marker.
pub(super) fn lex_action(template: &str, start: usize) -> LexResult {
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

pub(super) fn word_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// A Go interpreted string literal starting at `start`.
pub(super) fn quoted(template: &str, start: usize) -> Result<(String, usize), String> {
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
