//! Recursive descent over the tokens of `lex`. Nesting is bounded (`MAX_DEPTH`) so no input can exhaust the
//! stack; every refusal names what was found, what was expected and where.
use crate::ast::*;
use crate::error::{Error, Result};
use crate::lex::{Lexer, Tok, Token};

mod show;

/// Deepest nesting of parentheses and operators accepted.
const MAX_DEPTH: usize = 64;
/// Most operators in one query (Grafana's queries hold a handful).
const MAX_OPERATORS: usize = 1_000;

pub(crate) struct Parser<'a> {
    lex: Lexer<'a>,
    depth: usize,
    /// Operators in the query so far: a long chain `a + b + c …` is a deep tree too (dropping it recurses).
    ops: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            lex: Lexer::new(src),
            depth: 0,
            ops: 0,
        }
    }

    pub(crate) fn statements(&mut self) -> Result<Vec<Statement>> {
        let mut out = Vec::new();
        loop {
            while self.eat_punct(";")? {}
            if self.peek()?.tok == Tok::Eof {
                break;
            }
            out.push(self.statement()?);
            let t = self.next()?;
            match t.tok {
                Tok::Eof => break,
                Tok::Punct(";") => {}
                other => return Err(syntax(&other, "; or the end of the query", t.at)),
            }
        }
        if out.is_empty() {
            return Err(Error::Empty);
        }
        Ok(out)
    }

    fn peek(&self) -> Result<Token> {
        self.lex.peek()
    }

    fn next(&mut self) -> Result<Token> {
        self.lex.next_token()
    }

    fn peek_keyword(&self, kw: &str) -> Result<bool> {
        Ok(matches!(self.peek()?.tok, Tok::Ident(ref s) if s.eq_ignore_ascii_case(kw)))
    }

    fn eat_keyword(&mut self, kw: &str) -> Result<bool> {
        if self.peek_keyword(kw)? {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn keyword(&mut self, kw: &str) -> Result<()> {
        let t = self.next()?;
        match &t.tok {
            Tok::Ident(s) if s.eq_ignore_ascii_case(kw) => Ok(()),
            other => Err(syntax(other, kw, t.at)),
        }
    }

    fn eat_punct(&mut self, p: &str) -> Result<bool> {
        if self.peek()?.tok == Tok::Punct(punct(p)) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn punct(&mut self, p: &str) -> Result<()> {
        let t = self.next()?;
        if t.tok == Tok::Punct(punct(p)) {
            return Ok(());
        }
        Err(syntax(&t.tok, p, t.at))
    }

    /// A name: bare (not a reserved word) or double-quoted.
    fn name(&mut self, what: &str) -> Result<String> {
        let t = self.next()?;
        match t.tok {
            Tok::Quoted(s) => Ok(s),
            Tok::Ident(s) if !is_reserved(&s) => Ok(s),
            other => Err(syntax(&other, what, t.at)),
        }
    }

    fn unsigned(&mut self, what: &str) -> Result<u64> {
        let t = self.next()?;
        match t.tok {
            Tok::Int(n) if n >= 0 => Ok(n.unsigned_abs()),
            other => Err(syntax(&other, what, t.at)),
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        let t = self.next()?;
        match &t.tok {
            Tok::Ident(s) if s.eq_ignore_ascii_case("SELECT") => {
                Ok(Statement::Select(Box::new(self.select()?)))
            }
            Tok::Ident(s) if s.eq_ignore_ascii_case("SHOW") => self.show(),
            Tok::Ident(s) => Err(Error::Unsupported {
                what: format!("the statement {}", s.to_uppercase()),
                hint: "/query here only reads: SELECT or SHOW (write with POST /api/v2/write)"
                    .into(),
            }),
            other => Err(syntax(other, "SELECT or SHOW", t.at)),
        }
    }

    /// `FROM a, "db"."rp"."b", /re/`; required for `SELECT`.
    fn sources_clause(&mut self, required: bool) -> Result<Vec<Source>> {
        if !self.eat_keyword("FROM")? {
            if required {
                let t = self.peek()?;
                return Err(syntax(&t.tok, "FROM", t.at));
            }
            return Ok(Vec::new());
        }
        let mut out = vec![self.source()?];
        while self.eat_punct(",")? {
            out.push(self.source()?);
        }
        Ok(out)
    }

    fn source(&mut self) -> Result<Source> {
        let mut parts = Vec::new();
        loop {
            let part = self.source_match()?;
            let regex = matches!(part, Match::Regex(_));
            parts.push(part);
            if regex || parts.len() == 3 || !self.eat_punct(".")? {
                break;
            }
        }
        let measurement = parts.pop().ok_or(Error::Empty)?;
        let name = |m: Match| match m {
            Match::Name(n) => Ok(n),
            Match::Regex(_) => Err(Error::Unsupported {
                what: "a regular expression as database or retention policy".into(),
                hint: "name them, or leave them out".into(),
            }),
        };
        let (database, retention_policy) = match parts.len() {
            0 => (None, None),
            1 => (None, parts.pop().map(name).transpose()?),
            _ => {
                let rp = parts.pop().map(name).transpose()?;
                (parts.pop().map(name).transpose()?, rp)
            }
        };
        Ok(Source {
            database,
            retention_policy,
            measurement,
        })
    }

    fn where_clause(&mut self) -> Result<Option<Expr>> {
        if self.eat_keyword("WHERE")? {
            return Ok(Some(self.expr()?));
        }
        Ok(None)
    }

    fn limit_offset(&mut self) -> Result<(Option<u64>, Option<u64>)> {
        let mut limit = None;
        let mut offset = None;
        loop {
            if limit.is_none() && self.eat_keyword("LIMIT")? {
                limit = Some(self.unsigned("a whole number after LIMIT")?);
            } else if offset.is_none() && self.eat_keyword("OFFSET")? {
                offset = Some(self.unsigned("a whole number after OFFSET")?);
            } else {
                return Ok((limit, offset));
            }
        }
    }

    fn select(&mut self) -> Result<Select> {
        let mut fields = vec![self.field()?];
        while self.eat_punct(",")? {
            fields.push(self.field()?);
        }
        if self.peek_keyword("INTO")? {
            return Err(Error::Unsupported {
                what: "SELECT … INTO".into(),
                hint: "/query here only reads".into(),
            });
        }
        let from = self.sources_clause(true)?;
        let mut s = Select {
            fields,
            from,
            condition: self.where_clause()?,
            group_by_time: None,
            group_by_tags: Vec::new(),
            fill: Fill::Null,
            descending: false,
            limit: None,
            offset: None,
            slimit: None,
            soffset: None,
            tz: None,
        };
        if self.eat_keyword("GROUP")? {
            self.keyword("BY")?;
            self.dimensions(&mut s)?;
        }
        // The clauses after GROUP BY, in the order InfluxDB writes them; Grafana's query editor writes
        // `fill` right after the dimensions and `tz` last, which this order admits.
        if self.eat_keyword("fill")? {
            s.fill = self.fill()?;
        }
        if self.eat_keyword("ORDER")? {
            self.keyword("BY")?;
            let t = self.next()?;
            match &t.tok {
                Tok::Ident(s) if s.eq_ignore_ascii_case("time") => {}
                other => {
                    return Err(syntax(
                        other,
                        "time (results are ordered by time only)",
                        t.at,
                    ));
                }
            }
            if self.eat_keyword("DESC")? {
                s.descending = true;
            } else {
                self.eat_keyword("ASC")?;
            }
        }
        let (limit, offset) = self.limit_offset()?;
        (s.limit, s.offset) = (limit, offset);
        loop {
            if s.slimit.is_none() && self.eat_keyword("SLIMIT")? {
                s.slimit = Some(self.unsigned("a whole number after SLIMIT")?);
            } else if s.soffset.is_none() && self.eat_keyword("SOFFSET")? {
                s.soffset = Some(self.unsigned("a whole number after SOFFSET")?);
            } else {
                break;
            }
        }
        if self.eat_keyword("tz")? {
            self.punct("(")?;
            let t = self.next()?;
            match t.tok {
                Tok::Str(zone) => s.tz = Some(zone),
                other => {
                    return Err(syntax(
                        &other,
                        "a time zone in quotes, e.g. tz('Europe/Copenhagen')",
                        t.at,
                    ));
                }
            }
            self.punct(")")?;
        }
        Ok(s)
    }

    fn dimensions(&mut self, s: &mut Select) -> Result<()> {
        loop {
            let t = self.peek()?;
            match &t.tok {
                Tok::Ident(w) if w.eq_ignore_ascii_case("time") => {
                    self.next()?;
                    if s.group_by_time.is_some() {
                        return Err(Error::Unsupported {
                            what: "a second time() in GROUP BY".into(),
                            hint: "group by one time(…) interval".into(),
                        });
                    }
                    self.punct("(")?;
                    let width = self.duration("a bucket width such as 1h")?;
                    if width <= 0 {
                        return Err(syntax(
                            &Tok::Duration(width),
                            "a bucket width above zero",
                            t.at,
                        ));
                    }
                    let offset = if self.eat_punct(",")? {
                        let neg = self.eat_punct("-")?;
                        let d = self.duration("an offset such as 15m")?;
                        if neg { -d } else { d }
                    } else {
                        0
                    };
                    self.punct(")")?;
                    s.group_by_time = Some((width, offset));
                }
                Tok::Punct("*") => {
                    self.next()?;
                    s.group_by_tags.push(Dimension::All);
                }
                Tok::Punct("/") => s.group_by_tags.push(Dimension::Regex(self.regex()?)),
                _ => {
                    let name = self.name("time(…), a tag key, * or a regular expression")?;
                    // `"tag"::tag` in GROUP BY is the same tag.
                    if self.eat_punct("::")? {
                        self.name("tag")?;
                    }
                    s.group_by_tags.push(Dimension::Tag(name));
                }
            }
            if !self.eat_punct(",")? {
                return Ok(());
            }
        }
    }

    fn duration(&mut self, what: &str) -> Result<i64> {
        let t = self.next()?;
        match t.tok {
            Tok::Duration(ns) => Ok(ns),
            other => Err(syntax(&other, what, t.at)),
        }
    }

    fn fill(&mut self) -> Result<Fill> {
        self.punct("(")?;
        let t = self.next()?;
        let neg = matches!(t.tok, Tok::Punct("-"));
        let t = if neg { self.next()? } else { t };
        let sign = if neg { -1.0 } else { 1.0 };
        let fill = match &t.tok {
            Tok::Ident(w) if !neg && w.eq_ignore_ascii_case("null") => Fill::Null,
            Tok::Ident(w) if !neg && w.eq_ignore_ascii_case("none") => Fill::None,
            Tok::Ident(w) if !neg && w.eq_ignore_ascii_case("previous") => Fill::Previous,
            Tok::Ident(w) if !neg && w.eq_ignore_ascii_case("linear") => Fill::Linear,
            Tok::Int(n) => Fill::Value(sign * *n as f64),
            Tok::Float(x) => Fill::Value(sign * x),
            other => {
                return Err(syntax(
                    other,
                    "null, none, previous, linear or a number",
                    t.at,
                ));
            }
        };
        self.punct(")")?;
        Ok(fill)
    }

    fn field(&mut self) -> Result<Field> {
        let expr = self.additive()?;
        let alias = if self.eat_keyword("AS")? {
            Some(self.name("a column name after AS")?)
        } else {
            None
        };
        Ok(Field { expr, alias })
    }

    /// `a OR b`, lowest precedence.
    fn expr(&mut self) -> Result<Expr> {
        self.enter()?;
        let mut lhs = self.and()?;
        while self.eat_keyword("OR")? {
            let rhs = self.and()?;
            lhs = self.bin(Op::Or, lhs, rhs)?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr> {
        let mut lhs = self.comparison()?;
        while self.eat_keyword("AND")? {
            let rhs = self.comparison()?;
            lhs = self.bin(Op::And, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn comparison(&mut self) -> Result<Expr> {
        let lhs = self.additive()?;
        let op = match self.peek()?.tok {
            Tok::Punct("=") => Op::Eq,
            Tok::Punct("!=") | Tok::Punct("<>") => Op::NotEq,
            Tok::Punct("<") => Op::Lt,
            Tok::Punct("<=") => Op::LtEq,
            Tok::Punct(">") => Op::Gt,
            Tok::Punct(">=") => Op::GtEq,
            Tok::Punct("=~") => Op::Regex,
            Tok::Punct("!~") => Op::NotRegex,
            _ => return Ok(lhs),
        };
        self.next()?;
        let rhs = if matches!(op, Op::Regex | Op::NotRegex) {
            Expr::Regex(self.regex()?)
        } else {
            self.additive()?
        };
        self.bin(op, lhs, rhs)
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek()?.tok {
                Tok::Punct("+") => Op::Add,
                Tok::Punct("-") => Op::Sub,
                _ => return Ok(lhs),
            };
            self.next()?;
            let rhs = self.term()?;
            lhs = self.bin(op, lhs, rhs)?;
        }
    }

    fn term(&mut self) -> Result<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek()?.tok {
                Tok::Punct("*") => Op::Mul,
                Tok::Punct("/") => Op::Div,
                Tok::Punct("%") => Op::Mod,
                _ => return Ok(lhs),
            };
            self.next()?;
            let rhs = self.unary()?;
            lhs = self.bin(op, lhs, rhs)?;
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat_punct("-")? {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(match inner {
                Expr::Int(n) => Expr::Int(n.checked_neg().unwrap_or(i64::MAX)),
                Expr::Float(x) => Expr::Float(-x),
                Expr::Duration(d) => Expr::Duration(-d),
                other => binary(Op::Sub, Expr::Int(0), other),
            });
        }
        self.primary()
    }

    fn bin(&mut self, op: Op, lhs: Expr, rhs: Expr) -> Result<Expr> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(Error::TooDeep {
                limit: MAX_OPERATORS,
            });
        }
        Ok(binary(op, lhs, rhs))
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr> {
        let t = self.next()?;
        match t.tok {
            Tok::Punct("(") => {
                let e = self.expr()?;
                self.punct(")")?;
                Ok(e)
            }
            Tok::Punct("*") => Ok(Expr::Wildcard),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Int(n) => Ok(Expr::Int(n)),
            Tok::Float(x) => Ok(Expr::Float(x)),
            Tok::Duration(d) => Ok(Expr::Duration(d)),
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("true") => Ok(Expr::Bool(true)),
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("false") => Ok(Expr::Bool(false)),
            Tok::Ident(name) if !is_reserved(&name) => self.ident_or_call(name, true),
            Tok::Quoted(name) => self.ident_or_call(name, false),
            other => Err(syntax(
                &other,
                "a field, a tag, a function, a number, a string or (",
                t.at,
            )),
        }
    }

    fn ident_or_call(&mut self, name: String, bare: bool) -> Result<Expr> {
        if bare && self.eat_punct("(")? {
            self.enter()?;
            let mut args = Vec::new();
            if !self.eat_punct(")")? {
                loop {
                    // mean(/re/) names fields by a regular expression
                    if let Some((re, _)) = self.lex.clone().regex()? {
                        self.lex.regex()?;
                        args.push(Expr::Regex(re));
                    } else {
                        args.push(self.additive()?);
                    }
                    if !self.eat_punct(",")? {
                        break;
                    }
                }
                self.punct(")")?;
            }
            self.depth -= 1;
            return Ok(Expr::Call { name, args });
        }
        let hint = if self.eat_punct("::")? {
            Some(self.name("tag or field after ::")?)
        } else {
            None
        };
        Ok(Expr::Ident { name, hint })
    }
}

fn binary(op: Op, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

/// The `&'static str` of punctuation `p` (so tokens compare by value).
fn punct(p: &str) -> &'static str {
    const ALL: [&str; 20] = [
        "::", "!=", "<>", "<=", ">=", "=~", "!~", ",", "(", ")", ";", ".", "*", "=", "<", ">", "+",
        "-", "/", "%",
    ];
    ALL.iter().find(|q| **q == p).copied().unwrap_or("")
}

/// Words that are clauses, so `SELECT value FROM m WHERE …` never takes `WHERE` for a name.
fn is_reserved(word: &str) -> bool {
    const RESERVED: [&str; 20] = [
        "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "OFFSET", "SLIMIT", "SOFFSET",
        "AND", "OR", "AS", "FILL", "INTO", "ON", "WITH", "SHOW", "ASC", "DESC",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

fn syntax(found: &Tok, expected: &str, at: usize) -> Error {
    Error::Syntax {
        found: found.to_string(),
        expected: expected.to_owned(),
        at,
    }
}
