//! Label selectors as apimachinery's `labels.Parse` reads them and
//! `Selector.String()` writes them back: Flagger sends the re-written form
//! (requirements sorted by key, set values sorted), and a selector it cannot
//! parse fails the query with the parser's text.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const DNS_SUBDOMAIN: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

static QUALIFIED_NAME_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!("^{QUALIFIED_NAME}$")).ok());
static LABEL_VALUE_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!("^({QUALIFIED_NAME})?$")).ok());
static DNS_SUBDOMAIN_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!("^{DNS_SUBDOMAIN}$")).ok());

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    Ident(String),
    In,
    NotIn,
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::End => "",
            Token::Ident(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Bang => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
        }
    }

    /// In a value position `in` and `notin` are plain words.
    fn as_value(&self) -> Token {
        match self {
            Token::In | Token::NotIn => Token::Ident(self.literal().to_owned()),
            other => other.clone(),
        }
    }
}

fn lex(text: &str) -> Vec<Token> {
    let special = |c: char| "=!(),><".contains(c);
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            chars.next();
            continue;
        }
        if special(c) {
            chars.next();
            let token = match (c, chars.peek()) {
                ('=', Some('=')) => Some(Token::DoubleEq),
                ('!', Some('=')) => Some(Token::NotEq),
                _ => None,
            };
            if let Some(token) = token {
                chars.next();
                tokens.push(token);
                continue;
            }
            tokens.push(match c {
                '=' => Token::Eq,
                '!' => Token::Bang,
                '(' => Token::Open,
                ')' => Token::Close,
                ',' => Token::Comma,
                '>' => Token::Gt,
                _ => Token::Lt,
            });
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if matches!(c, ' ' | '\t' | '\r' | '\n') || special(c) {
                break;
            }
            word.push(c);
            chars.next();
        }
        tokens.push(match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(word),
        });
    }
    tokens.push(Token::End);
    tokens
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Eq,
    DoubleEq,
    NotEq,
    In,
    NotIn,
    Gt,
    Lt,
}

struct Requirement {
    key: String,
    op: Op,
    values: BTreeSet<String>,
}

impl Requirement {
    fn text(&self) -> String {
        let values = self.values.iter().cloned().collect::<Vec<_>>().join(",");
        match self.op {
            Op::Exists => self.key.clone(),
            Op::DoesNotExist => format!("!{}", self.key),
            Op::Eq => format!("{}={values}", self.key),
            Op::DoubleEq => format!("{}=={values}", self.key),
            Op::NotEq => format!("{}!={values}", self.key),
            Op::Gt => format!("{}>{values}", self.key),
            Op::Lt => format!("{}<{values}", self.key),
            Op::In => format!("{} in ({values})", self.key),
            Op::NotIn => format!("{} notin ({values})", self.key),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens
            .get(self.pos)
            .map(Token::as_value)
            .unwrap_or(Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek();
        self.pos += 1;
        token
    }

    fn next_operator(&mut self) -> Token {
        let token = self.tokens.get(self.pos).cloned().unwrap_or(Token::End);
        self.pos += 1;
        token
    }
}

/// Parses `text` and writes it back the way Flagger sends it; `Err` is
/// apimachinery's text.
pub fn normalize(text: &str) -> Result<String, String> {
    let mut parser = Parser {
        tokens: lex(text),
        pos: 0,
    };
    let mut requirements = Vec::new();
    loop {
        match parser.peek() {
            Token::Ident(_) | Token::Bang => {
                let requirement = requirement(&mut parser)
                    .map_err(|e| format!("unable to parse requirement: {e}"))?;
                requirements.push(requirement);
                match parser.next() {
                    Token::End => break,
                    Token::Comma => match parser.peek() {
                        Token::Ident(_) | Token::Bang => {}
                        other => {
                            return Err(format!(
                                "found '{}', expected: identifier after ','",
                                other.literal()
                            ));
                        }
                    },
                    other => {
                        return Err(format!(
                            "found '{}', expected: ',' or 'end of string'",
                            other.literal()
                        ));
                    }
                }
            }
            Token::End => break,
            other => {
                return Err(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    other.literal()
                ));
            }
        }
    }
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(requirements
        .iter()
        .map(Requirement::text)
        .collect::<Vec<_>>()
        .join(","))
}

fn requirement(parser: &mut Parser) -> Result<Requirement, String> {
    let mut op = None;
    let mut token = parser.next();
    if token == Token::Bang {
        op = Some(Op::DoesNotExist);
        token = parser.next();
    }
    let Token::Ident(key) = token else {
        return Err(format!("found '{}', expected: identifier", token.literal()));
    };
    // The key alone is checked first, with no field path (as apimachinery).
    if let Some(detail) = qualified_name_errors(&key) {
        return Err(invalid("", &key, &detail));
    }
    if matches!(parser.peek(), Token::End | Token::Comma) && op.is_none() {
        op = Some(Op::Exists);
    }
    if let Some(op) = op {
        return Ok(Requirement {
            key,
            op,
            values: BTreeSet::new(),
        });
    }
    let op = match parser.next_operator() {
        Token::In => Op::In,
        Token::NotIn => Op::NotIn,
        Token::Eq => Op::Eq,
        Token::DoubleEq => Op::DoubleEq,
        Token::NotEq => Op::NotEq,
        Token::Gt => Op::Gt,
        Token::Lt => Op::Lt,
        other => {
            return Err(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                other.literal()
            ));
        }
    };
    let values = match op {
        Op::In | Op::NotIn => set_values(parser)?,
        _ => exact_value(parser)?,
    };
    check_values(&key, op, &values)?;
    Ok(Requirement { key, op, values })
}

fn set_values(parser: &mut Parser) -> Result<BTreeSet<String>, String> {
    let open = parser.next();
    if open != Token::Open {
        return Err(format!("found '{}' expected: '('", open.literal()));
    }
    let mut values = BTreeSet::new();
    match parser.peek() {
        Token::Close => {
            parser.next();
            values.insert(String::new());
            return Ok(values);
        }
        Token::Ident(_) | Token::Comma => {}
        other => {
            return Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                other.literal()
            ));
        }
    }
    loop {
        match parser.next() {
            Token::Ident(value) => {
                values.insert(value);
                match parser.peek() {
                    Token::Comma => {}
                    Token::Close => break,
                    other => {
                        return Err(format!("found '{}', expected: ',' or ')'", other.literal()));
                    }
                }
            }
            Token::Comma => {
                if values.is_empty() {
                    values.insert(String::new());
                }
                match parser.peek() {
                    Token::Close => {
                        values.insert(String::new());
                        break;
                    }
                    Token::Comma => {
                        parser.next();
                        values.insert(String::new());
                    }
                    _ => {}
                }
            }
            other => {
                return Err(format!(
                    "found '{}', expected: ',', or identifier",
                    other.literal()
                ));
            }
        }
    }
    let close = parser.next();
    if close != Token::Close {
        return Err(format!("found '{}', expected: ')'", close.literal()));
    }
    Ok(values)
}

fn exact_value(parser: &mut Parser) -> Result<BTreeSet<String>, String> {
    if matches!(parser.peek(), Token::End | Token::Comma) {
        return Ok(BTreeSet::from([String::new()]));
    }
    match parser.next() {
        Token::Ident(value) => Ok(BTreeSet::from([value])),
        other => Err(format!("found '{}', expected: identifier", other.literal())),
    }
}

/// `NewRequirement`'s value checks (the key passed already).
fn check_values(key: &str, op: Op, values: &BTreeSet<String>) -> Result<(), String> {
    let mut errors = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if matches!(op, Op::Gt | Op::Lt) && value.parse::<i64>().is_err() {
            errors.push(invalid(
                &format!("values[{i}]"),
                value,
                "for 'Gt', 'Lt' operators, the value must be an integer",
            ));
        }
    }
    for (i, value) in values.iter().enumerate() {
        let mut problems = Vec::new();
        if value.len() > 63 {
            problems.push("must be no more than 63 characters".to_owned());
        }
        if !matches(&LABEL_VALUE_RE, value) {
            problems.push(regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                &format!("({QUALIFIED_NAME})?"),
                &["MyValue", "my_value", "12345"],
            ));
        }
        if !problems.is_empty() {
            errors.push(invalid(
                &format!("values[{i}][{key}]"),
                value,
                &problems.join("; "),
            ));
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

fn matches(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(text))
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value:?}: {detail}")
}

fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    let examples: String = examples
        .iter()
        .map(|e| format!("'{e}', "))
        .collect::<Vec<_>>()
        .join(" or ");
    format!("{message} (e.g. {examples}regex used for validation is '{pattern}')")
}

/// `validation.IsQualifiedName`, joined with "; " as apimachinery does.
fn qualified_name_errors(key: &str) -> Option<String> {
    let name_rule = || {
        regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            QUALIFIED_NAME,
            &["MyName", "my.name", "123-abc"],
        )
    };
    let parts: Vec<&str> = key.split('/').collect();
    let mut errors = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > 253 {
                    errors.push("prefix part must be no more than 253 characters".to_owned());
                }
                if !matches(&DNS_SUBDOMAIN_RE, prefix) {
                    errors.push(format!(
                        "prefix part {}",
                        regex_error(
                            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                            DNS_SUBDOMAIN,
                            &["example.com"],
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            return Some(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                name_rule()
            ));
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    if !matches(&QUALIFIED_NAME_RE, name) {
        errors.push(format!("name part {}", name_rule()));
    }
    (!errors.is_empty()).then(|| errors.join("; "))
}
