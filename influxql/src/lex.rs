//! Tokens of InfluxQL, scanned on demand: a `/` is division or the start of a regular expression depending on
//! where the parser is, so the parser asks for a regex explicitly (`Lexer::regex`) where one may stand.
use crate::error::{Error, Result};

/// One token and the character (1-based, as InfluxDB counts) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare identifier or keyword (keywords are compared case-insensitively by the parser).
    Ident(String),
    /// A double-quoted identifier: never a keyword.
    Quoted(String),
    /// A single-quoted string.
    Str(String),
    Int(i64),
    Float(f64),
    /// A duration literal (`10s`, `1596240000000ms`), in nanoseconds.
    Duration(i64),
    /// Punctuation and operators.
    Punct(&'static str),
    Eof,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "{s}"),
            Tok::Quoted(s) => write!(f, "\"{s}\""),
            Tok::Str(s) => write!(f, "'{s}'"),
            Tok::Int(n) => write!(f, "{n}"),
            Tok::Float(x) => write!(f, "{x}"),
            Tok::Duration(ns) => write!(f, "{ns}ns"),
            Tok::Punct(p) => f.write_str(p),
            Tok::Eof => f.write_str("EOF"),
        }
    }
}

/// Longest first, so `<=` is not read as `<`.
const PUNCT: [&str; 20] = [
    "::", "!=", "<>", "<=", ">=", "=~", "!~", ",", "(", ")", ";", ".", "*", "=", "<", ">", "+",
    "-", "/", "%",
];

/// Nanoseconds per duration unit, longest unit names first.
const UNITS: [(&str, i64); 9] = [
    ("ns", 1),
    ("ms", 1_000_000),
    ("µ", 1_000),
    ("u", 1_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// The 1-based character position of byte offset `pos`.
    pub(crate) fn char_at(&self, pos: usize) -> usize {
        self.src.get(..pos).map_or(0, |s| s.chars().count()) + 1
    }

    fn skip_space(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                let line = trimmed.find('\n').unwrap_or(trimmed.len());
                self.pos += line;
            } else {
                return;
            }
        }
    }

    /// The next token without consuming it.
    pub(crate) fn peek(&self) -> Result<Token> {
        self.clone().next_token()
    }

    pub(crate) fn next_token(&mut self) -> Result<Token> {
        self.skip_space();
        let start = self.pos;
        let at = self.char_at(start);
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token { tok: Tok::Eof, at });
        };
        let tok = if c.is_ascii_digit()
            || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            self.number(at)?
        } else if c.is_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            self.pos += len;
            Tok::Ident(rest[..len].to_owned())
        } else if c == '"' {
            Tok::Quoted(self.quoted('"', at)?)
        } else if c == '\'' {
            Tok::Str(self.quoted('\'', at)?)
        } else if let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) {
            self.pos += p.len();
            Tok::Punct(p)
        } else {
            return Err(Error::Syntax {
                found: c.to_string(),
                expected: "a name, a number, a string or an operator".into(),
                at,
            });
        };
        Ok(Token { tok, at })
    }

    fn number(&mut self, at: usize) -> Result<Tok> {
        let rest = self.rest();
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let text = &rest[..digits];
        let after = &rest[digits..];
        let bad = |expected: &str| Error::Syntax {
            found: text.to_owned(),
            expected: expected.to_owned(),
            at,
        };
        // A duration: whole number directly followed by a unit that does not run on into a name.
        if !text.contains('.') {
            for (unit, ns) in UNITS {
                if let Some(tail) = after.strip_prefix(unit)
                    && !tail.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                {
                    let n: i64 = text.parse().map_err(|_| bad("a whole number"))?;
                    let total = n.checked_mul(ns).ok_or_else(|| Error::Syntax {
                        found: format!("{text}{unit}"),
                        expected: "a duration that fits in 292 years of nanoseconds".into(),
                        at,
                    })?;
                    self.pos += digits + unit.len();
                    return Ok(Tok::Duration(total));
                }
            }
        }
        self.pos += digits;
        if text.contains('.') {
            text.parse::<f64>()
                .map(Tok::Float)
                .map_err(|_| bad("a number"))
        } else {
            text.parse::<i64>()
                .map(Tok::Int)
                .map_err(|_| bad("a whole number that fits in 64 bits"))
        }
    }

    /// A `quote`-delimited string starting at the current position; `\\` and `\<quote>` escape, `\n` is a line
    /// break.
    fn quoted(&mut self, quote: char, at: usize) -> Result<String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, e)) if e == quote || e == '\\' => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                c if c == quote => {
                    self.pos += i + c.len_utf8();
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(Error::Syntax {
            found: "the end of the query".into(),
            expected: format!("the closing {quote} of the text begun"),
            at,
        })
    }

    /// A `/regex/` starting at the current position (after spaces); `\/` stands for `/`.
    pub(crate) fn regex(&mut self) -> Result<Option<(String, usize)>> {
        self.skip_space();
        let at = self.char_at(self.pos);
        if !self.rest().starts_with('/') {
            return Ok(None);
        }
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '/')) => out.push('/'),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                '/' => {
                    self.pos += i + 1;
                    return Ok(Some((out, at)));
                }
                c => out.push(c),
            }
        }
        Err(Error::Syntax {
            found: "the end of the query".into(),
            expected: "the closing / of the regular expression begun".into(),
            at,
        })
    }
}
