//! The statements bydata answers, as the parser leaves them: names unquoted, literals typed, times still
//! expressions (the caller knows `now()`).

/// One statement of a query (a query is one or more, separated by `;`).
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Box<Select>),
    ShowDatabases,
    ShowRetentionPolicies {
        database: Option<String>,
    },
    ShowMeasurements {
        database: Option<String>,
        /// `WITH MEASUREMENT = name` or `=~ /regex/`.
        with: Option<Match>,
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowTagKeys {
        database: Option<String>,
        from: Vec<Source>,
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowTagValues {
        database: Option<String>,
        from: Vec<Source>,
        /// `WITH KEY = k`, `!= k`, `=~ /re/`, `!~ /re/` or `IN (a, b)`.
        key: KeyMatch,
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowFieldKeys {
        database: Option<String>,
        from: Vec<Source>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
}

/// A name or a regular expression to match names with.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    Name(String),
    Regex(String),
}

/// Which tag keys `SHOW TAG VALUES` lists.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyMatch {
    Eq(String),
    NotEq(String),
    Regex(String),
    NotRegex(String),
    In(Vec<String>),
}

/// A measurement to read (`"db"."rp"."m"` keeps only the measurement; the database and retention policy
/// are the caller's to check), or a regular expression over measurement names.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub measurement: Match,
}

/// `SELECT fields FROM sources [WHERE …] [GROUP BY …] [fill(…)] [ORDER BY time …] [LIMIT …] [tz(…)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub fields: Vec<Field>,
    pub from: Vec<Source>,
    pub condition: Option<Expr>,
    /// `GROUP BY time(width[, offset])`: width and offset in nanoseconds.
    pub group_by_time: Option<(i64, i64)>,
    pub group_by_tags: Vec<Dimension>,
    pub fill: Fill,
    /// `ORDER BY time DESC`.
    pub descending: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    pub tz: Option<String>,
}

/// One column of a `SELECT`, with its `AS` name.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// A `GROUP BY` dimension other than `time(…)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    Tag(String),
    /// `GROUP BY *`: every tag.
    All,
    Regex(String),
}

/// What an empty `GROUP BY time` bucket shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// `fill(null)`, the default: the bucket is there, its value null.
    Null,
    /// `fill(none)`: the bucket is left out.
    None,
    Previous,
    Linear,
    Value(f64),
}

/// An expression: a field or its aggregate in `SELECT`, a condition in `WHERE`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A name, with its `::tag` / `::field` hint if given.
    Ident {
        name: String,
        hint: Option<String>,
    },
    Str(String),
    Regex(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A duration literal in nanoseconds (after `time >=` it is an absolute time since the epoch).
    Duration(i64),
    Wildcard,
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Binary {
        op: Op,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

/// Binary operators, arithmetic, comparison and logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Regex,
    NotRegex,
    And,
    Or,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Mod => "%",
            Op::Eq => "=",
            Op::NotEq => "!=",
            Op::Lt => "<",
            Op::LtEq => "<=",
            Op::Gt => ">",
            Op::GtEq => ">=",
            Op::Regex => "=~",
            Op::NotRegex => "!~",
            Op::And => "AND",
            Op::Or => "OR",
        }
    }
}
