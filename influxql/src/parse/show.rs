//! The `SHOW` statements of Grafana's query builder, and the matches they share.
use super::{Parser, syntax};
use crate::ast::*;
use crate::error::{Error, Result};
use crate::lex::Tok;

/// Statements bydata answers after `SHOW`, for the refusal of any other.
const SHOWS: &str = "SHOW DATABASES, SHOW MEASUREMENTS, SHOW TAG KEYS, SHOW TAG VALUES, SHOW FIELD KEYS or \
                     SHOW RETENTION POLICIES";

impl Parser<'_> {
    pub(super) fn on_database(&mut self) -> Result<Option<String>> {
        if self.eat_keyword("ON")? {
            return Ok(Some(self.name("a database name")?));
        }
        Ok(None)
    }

    pub(super) fn show(&mut self) -> Result<Statement> {
        let t = self.next()?;
        let word = match &t.tok {
            Tok::Ident(s) => s.to_uppercase(),
            other => return Err(syntax(other, SHOWS, t.at)),
        };
        match word.as_str() {
            "DATABASES" => Ok(Statement::ShowDatabases),
            "RETENTION" => {
                self.keyword("POLICIES")?;
                Ok(Statement::ShowRetentionPolicies {
                    database: self.on_database()?,
                })
            }
            "MEASUREMENTS" => {
                let database = self.on_database()?;
                let with = if self.eat_keyword("WITH")? {
                    self.keyword("MEASUREMENT")?;
                    let op = self.next()?;
                    match op.tok {
                        Tok::Punct("=") => Some(self.source_match()?),
                        Tok::Punct("=~") => Some(Match::Regex(self.regex()?)),
                        other => return Err(syntax(&other, "= or =~", op.at)),
                    }
                } else {
                    None
                };
                let condition = self.where_clause()?;
                let (limit, offset) = self.limit_offset()?;
                Ok(Statement::ShowMeasurements {
                    database,
                    with,
                    condition,
                    limit,
                    offset,
                })
            }
            "TAG" => {
                let t = self.next()?;
                let kind = match &t.tok {
                    Tok::Ident(s) => s.to_uppercase(),
                    other => return Err(syntax(other, "KEYS or VALUES", t.at)),
                };
                let database = self.on_database()?;
                let from = self.sources_clause(false)?;
                match kind.as_str() {
                    "KEYS" => {
                        let condition = self.where_clause()?;
                        let (limit, offset) = self.limit_offset()?;
                        Ok(Statement::ShowTagKeys {
                            database,
                            from,
                            condition,
                            limit,
                            offset,
                        })
                    }
                    "VALUES" => {
                        self.keyword("WITH")?;
                        self.keyword("KEY")?;
                        let key = self.key_match()?;
                        let condition = self.where_clause()?;
                        let (limit, offset) = self.limit_offset()?;
                        Ok(Statement::ShowTagValues {
                            database,
                            from,
                            key,
                            condition,
                            limit,
                            offset,
                        })
                    }
                    _ => Err(syntax(&t.tok, "KEYS or VALUES", t.at)),
                }
            }
            "FIELD" => {
                self.keyword("KEYS")?;
                let database = self.on_database()?;
                let from = self.sources_clause(false)?;
                let (limit, offset) = self.limit_offset()?;
                Ok(Statement::ShowFieldKeys {
                    database,
                    from,
                    limit,
                    offset,
                })
            }
            _ => Err(Error::Unsupported {
                what: format!("SHOW {word}"),
                hint: format!("bydata answers {SHOWS}"),
            }),
        }
    }

    pub(super) fn key_match(&mut self) -> Result<KeyMatch> {
        let op = self.next()?;
        Ok(match op.tok {
            Tok::Punct("=") => KeyMatch::Eq(self.name("a tag key")?),
            Tok::Punct("!=") | Tok::Punct("<>") => KeyMatch::NotEq(self.name("a tag key")?),
            Tok::Punct("=~") => KeyMatch::Regex(self.regex()?),
            Tok::Punct("!~") => KeyMatch::NotRegex(self.regex()?),
            Tok::Ident(ref s) if s.eq_ignore_ascii_case("IN") => {
                self.punct("(")?;
                let mut keys = vec![self.name("a tag key")?];
                while self.eat_punct(",")? {
                    keys.push(self.name("a tag key")?);
                }
                self.punct(")")?;
                KeyMatch::In(keys)
            }
            other => return Err(syntax(&other, "=, !=, =~, !~ or IN", op.at)),
        })
    }

    pub(super) fn regex(&mut self) -> Result<String> {
        match self.lex.regex()? {
            Some((re, _)) => Ok(re),
            None => {
                let t = self.peek()?;
                Err(syntax(&t.tok, "a regular expression such as /^a.*/", t.at))
            }
        }
    }

    pub(super) fn source_match(&mut self) -> Result<Match> {
        if let Some((re, _)) = self.lex.regex()? {
            return Ok(Match::Regex(re));
        }
        Ok(Match::Name(self.name("a measurement name")?))
    }
}
