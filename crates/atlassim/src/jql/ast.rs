//! The JQL syntax tree, its parser (recursive descent with Jira's precedence:
//! `NOT` over `AND` over `OR`) and a printer whose output parses back to the
//! same tree.

use std::fmt;

use super::lexer::{tokenize, Tok, Token};
use super::JqlError;

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub clause: Option<Expr>,
    pub order_by: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause(Clause),
    /// `field WAS …` / `field CHANGED …`, evaluated over the changelog.
    History(HistoryClause),
}

/// `status WAS [NOT] [IN] value [BY …] [AFTER …]` or
/// `status CHANGED [FROM …] [TO …] [BY …] [BEFORE …] [ON …] [DURING (a, b)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryClause {
    pub field: String,
    pub op: HistoryOp,
    /// The value(s) of `WAS`; `None` for `CHANGED`.
    pub operand: Option<Operand>,
    pub predicates: Vec<(HistoryPredicate, Operand)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryOp {
    Was,
    WasNot,
    WasIn,
    WasNotIn,
    Changed,
}

impl HistoryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryOp::Was => "was",
            HistoryOp::WasNot => "was not",
            HistoryOp::WasIn => "was in",
            HistoryOp::WasNotIn => "was not in",
            HistoryOp::Changed => "changed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPredicate {
    From,
    To,
    By,
    After,
    Before,
    On,
    During,
}

impl HistoryPredicate {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryPredicate::From => "from",
            HistoryPredicate::To => "to",
            HistoryPredicate::By => "by",
            HistoryPredicate::After => "after",
            HistoryPredicate::Before => "before",
            HistoryPredicate::On => "on",
            HistoryPredicate::During => "during",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [
            HistoryPredicate::From,
            HistoryPredicate::To,
            HistoryPredicate::By,
            HistoryPredicate::After,
            HistoryPredicate::Before,
            HistoryPredicate::On,
            HistoryPredicate::During,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(word))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: String,
    pub op: Op,
    pub operand: Operand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
    In,
    NotIn,
    Is,
    IsNot,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "~",
            Op::NotLike => "!~",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::Is => "is",
            Op::IsNot => "is not",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(String),
    Empty,
    Function(String, Vec<String>),
    List(Vec<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: String,
    pub direction: Option<Direction>,
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc", "was",
    "changed", "after", "before", "during", "on", "from", "to",
];

fn is_keyword(w: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

const OPERATORS_HINT: &str = "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'.";

pub fn parse(input: &str) -> Result<Query, JqlError> {
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        i: 0,
        depth: 0,
    };
    let clause = if p.at_order_by() || p.peek().tok == Tok::Eof {
        None
    } else {
        Some(p.or_expr()?)
    };
    let order_by = if p.at_order_by() {
        p.i += 2;
        p.order_items()?
    } else {
        Vec::new()
    };
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(if clause.is_some() && order_by.is_empty() {
            p.unexpected("Expecting either 'OR' or 'AND'")
        } else {
            p.unexpected("Expecting either ',' or the end of the query")
        });
    }
    Ok(Query { clause, order_by })
}

/// How deep `NOT` and parentheses may nest. Each level is a recursion of
/// the parser (and of printing, comparing, evaluating and dropping the
/// tree): without a bound, 8 KB of `!` overflowed the stack (found by
/// `fuzz/fuzz_targets/jql.rs`). No real query nests anywhere near this.
pub const MAX_NESTING: usize = 100;

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    /// `NOT`s and open parentheses around the current position.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `tokenize` always ends with Eof, and `i` never passes it.
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.i + n).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn word_is(&self, n: usize, kw: &str) -> bool {
        matches!(&self.peek_at(n).tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn at_order_by(&self) -> bool {
        self.word_is(0, "order") && self.word_is(1, "by")
    }

    fn unexpected(&self, expecting: &str) -> JqlError {
        let t = self.peek();
        if t.tok == Tok::Eof {
            JqlError::parse(format!("{expecting} before the end of the query."))
        } else {
            JqlError::parse(format!(
                "{expecting} but got '{}'. (line 1, character {})",
                t.describe(),
                t.pos
            ))
        }
    }

    fn or_expr(&mut self) -> Result<Expr, JqlError> {
        let mut left = self.and_expr()?;
        loop {
            let is_or = matches!(self.peek().tok, Tok::Or) || self.word_is(0, "or");
            if !is_or {
                return Ok(left);
            }
            self.bump();
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
    }

    fn and_expr(&mut self) -> Result<Expr, JqlError> {
        let mut left = self.not_expr()?;
        loop {
            let is_and = matches!(self.peek().tok, Tok::And) || self.word_is(0, "and");
            if !is_and {
                return Ok(left);
            }
            self.bump();
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn not_expr(&mut self) -> Result<Expr, JqlError> {
        let not = matches!(self.peek().tok, Tok::Not) || self.word_is(0, "not");
        if not || self.peek().tok == Tok::LParen {
            self.depth += 1;
            if self.depth > MAX_NESTING {
                return Err(JqlError::parse(format!(
                    "The query nests 'NOT' and parentheses more than {MAX_NESTING} levels deep. (line 1, character {})",
                    self.peek().pos
                )));
            }
            self.bump();
            let inner = if not {
                Expr::Not(Box::new(self.not_expr()?))
            } else {
                let inner = self.or_expr()?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.unexpected("Expecting ')'"));
                }
                self.bump();
                inner
            };
            self.depth -= 1;
            return Ok(inner);
        }
        self.clause()
    }

    fn field_name(&mut self) -> Result<String, JqlError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Word(w) if !is_keyword(&w) => {
                self.bump();
                Ok(w)
            }
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            Tok::Word(w) => Err(JqlError::parse(format!(
                "Expecting a field name but got '{w}'. You must surround '{w}' in quotation marks to use it as a field name. (line 1, character {})",
                t.pos
            ))),
            _ => Err(self.unexpected("Expecting a field name")),
        }
    }

    fn clause(&mut self) -> Result<Expr, JqlError> {
        let field = self.field_name()?;
        if self.word_is(0, "was") || self.word_is(0, "changed") {
            return self.history_clause(field).map(Expr::History);
        }
        let op = self.operator()?;
        let operand = match op {
            Op::Is | Op::IsNot => {
                if self.word_is(0, "empty") || self.word_is(0, "null") {
                    self.bump();
                    Operand::Empty
                } else {
                    return Err(self.unexpected("Expecting 'EMPTY' or 'NULL'"));
                }
            }
            Op::In | Op::NotIn => {
                if self.peek().tok != Tok::LParen {
                    // Jira also accepts a function here (`sprint in openSprints()`).
                    match self.operand()? {
                        f @ Operand::Function(..) => f,
                        _ => {
                            return Err(JqlError::parse(format!(
                                "Expecting a list or function for operator '{}'.",
                                op.as_str().to_uppercase()
                            )))
                        }
                    }
                } else {
                    self.list()?
                }
            }
            _ => self.operand()?,
        };
        Ok(Expr::Clause(Clause { field, op, operand }))
    }

    fn history_clause(&mut self, field: String) -> Result<HistoryClause, JqlError> {
        let changed = self.word_is(0, "changed");
        self.bump();
        let (op, operand) = if changed {
            (HistoryOp::Changed, None)
        } else {
            let not = self.word_is(0, "not");
            if not {
                self.bump();
            }
            let is_in = self.word_is(0, "in");
            if is_in {
                self.bump();
            }
            let op = match (not, is_in) {
                (false, false) => HistoryOp::Was,
                (true, false) => HistoryOp::WasNot,
                (false, true) => HistoryOp::WasIn,
                (true, true) => HistoryOp::WasNotIn,
            };
            let operand = if is_in && self.peek().tok == Tok::LParen {
                self.list()?
            } else if is_in {
                return Err(JqlError::parse(format!(
                    "Expecting a list or function for operator '{}'.",
                    op.as_str().to_uppercase()
                )));
            } else {
                self.operand()?
            };
            (op, Some(operand))
        };
        let mut predicates = Vec::new();
        loop {
            let pred = match &self.peek().tok {
                Tok::Word(w) => HistoryPredicate::parse(w),
                _ => None,
            };
            let Some(pred) = pred else { break };
            if !changed && matches!(pred, HistoryPredicate::From | HistoryPredicate::To) {
                return Err(self.unexpected("Expecting 'AFTER', 'BEFORE', 'BY', 'DURING' or 'ON'"));
            }
            self.bump();
            let value = match pred {
                HistoryPredicate::During => {
                    if self.peek().tok != Tok::LParen {
                        return Err(self.unexpected("Expecting '('"));
                    }
                    match self.list()? {
                        Operand::List(items) if items.len() == 2 => Operand::List(items),
                        _ => {
                            return Err(JqlError::parse(
                                "The 'DURING' predicate takes two dates: DURING (start, end).",
                            ))
                        }
                    }
                }
                HistoryPredicate::By if self.peek().tok == Tok::LParen => self.list()?,
                _ => self.operand()?,
            };
            predicates.push((pred, value));
        }
        Ok(HistoryClause {
            field,
            op,
            operand,
            predicates,
        })
    }

    fn operator(&mut self) -> Result<Op, JqlError> {
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Op(o) => match *o {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                "<=" => Op::Le,
                "~" => Op::Like,
                _ => Op::NotLike,
            },
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => Op::In,
            Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
                self.bump();
                if self.word_is(0, "not") {
                    self.bump();
                    return Ok(Op::IsNot);
                }
                return Ok(Op::Is);
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") && self.word_is(1, "in") => {
                self.bump();
                Op::NotIn
            }
            Tok::Not if self.word_is(1, "in") => {
                self.bump();
                Op::NotIn
            }
            _ => {
                return Err(self
                    .unexpected("Expecting operator")
                    .with_suffix(OPERATORS_HINT))
            }
        };
        self.bump();
        Ok(op)
    }

    fn list(&mut self) -> Result<Operand, JqlError> {
        self.bump(); // (
        let mut items = Vec::new();
        if self.peek().tok == Tok::RParen {
            return Err(self.unexpected("Expecting either a value, list or function"));
        }
        loop {
            items.push(self.operand()?);
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok(Operand::List(items));
                }
                _ => return Err(self.unexpected("Expecting ')'")),
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, JqlError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Str(s) => {
                self.bump();
                Ok(Operand::Value(s))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("empty") || w.eq_ignore_ascii_case("null") => {
                self.bump();
                Ok(Operand::Empty)
            }
            Tok::Word(w) if self.peek_at(1).tok == Tok::LParen => {
                self.bump();
                self.bump();
                let mut args = Vec::new();
                loop {
                    let a = self.peek().clone();
                    match a.tok {
                        Tok::RParen => {
                            self.bump();
                            break;
                        }
                        Tok::Word(x) | Tok::Str(x) => {
                            self.bump();
                            args.push(x);
                            match self.peek().tok {
                                Tok::Comma => {
                                    self.bump();
                                }
                                Tok::RParen => {}
                                _ => return Err(self.unexpected("Expecting ')'")),
                            }
                        }
                        _ => return Err(self.unexpected("Expecting ')'")),
                    }
                }
                Ok(Operand::Function(w, args))
            }
            Tok::Word(w) if !is_keyword(&w) => {
                self.bump();
                Ok(Operand::Value(w))
            }
            Tok::Word(w) => Err(JqlError::parse(format!(
                "Expecting either a value, list or function but got '{w}'. You must surround '{w}' in quotation marks to use it as a value. (line 1, character {})",
                t.pos
            ))),
            _ => Err(self.unexpected("Expecting either a value, list or function")),
        }
    }

    fn order_items(&mut self) -> Result<Vec<OrderItem>, JqlError> {
        let mut items = Vec::new();
        loop {
            let field = self.field_name()?;
            let direction = if self.word_is(0, "asc") {
                self.bump();
                Some(Direction::Asc)
            } else if self.word_is(0, "desc") {
                self.bump();
                Some(Direction::Desc)
            } else {
                None
            };
            items.push(OrderItem { field, direction });
            if self.peek().tok == Tok::Comma {
                self.bump();
            } else {
                return Ok(items);
            }
        }
    }
}

/// Prints a word bare when it would lex back as the same single word.
fn print_word(f: &mut fmt::Formatter<'_>, w: &str) -> fmt::Result {
    let bare = !w.is_empty()
        && !is_keyword(w)
        && w.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !w.starts_with(|c: char| c.is_ascii_digit());
    if bare {
        f.write_str(w)
    } else {
        print_quoted(f, w)
    }
}

fn print_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(v) => print_quoted(f, v),
            Operand::Empty => f.write_str("EMPTY"),
            Operand::Function(name, args) => {
                f.write_str(name)?;
                f.write_str("(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    print_quoted(f, a)?;
                }
                f.write_str(")")
            }
            Operand::List(items) => {
                f.write_str("(")?;
                for (i, a) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parentheses only where the parser needs them (NOT binds tightest,
        // then AND, then OR; AND and OR chain to the left), so the printed
        // text parses back to exactly this tree and nests no deeper than any
        // text that parses to it (MAX_NESTING holds for it too).
        let paren = |f: &mut fmt::Formatter<'_>, e: &Expr, needed: bool| {
            if needed {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        let compound = |e: &Expr| matches!(e, Expr::And(..) | Expr::Or(..));
        match self {
            Expr::And(a, b) => {
                paren(f, a, matches!(**a, Expr::Or(..)))?;
                f.write_str(" AND ")?;
                paren(f, b, compound(b))
            }
            Expr::Or(a, b) => {
                paren(f, a, false)?;
                f.write_str(" OR ")?;
                paren(f, b, matches!(**b, Expr::Or(..)))
            }
            Expr::Not(a) => {
                f.write_str("NOT ")?;
                paren(f, a, compound(a))
            }
            Expr::Clause(c) => {
                print_word(f, &c.field)?;
                write!(f, " {} {}", c.op.as_str().to_uppercase(), c.operand)
            }
            Expr::History(h) => {
                print_word(f, &h.field)?;
                write!(f, " {}", h.op.as_str().to_uppercase())?;
                if let Some(o) = &h.operand {
                    write!(f, " {o}")?;
                }
                for (p, v) in &h.predicates {
                    write!(f, " {} {v}", p.as_str().to_uppercase())?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.clause {
            write!(f, "{c}")?;
            if !self.order_by.is_empty() {
                f.write_str(" ")?;
            }
        }
        if !self.order_by.is_empty() {
            f.write_str("ORDER BY ")?;
            for (i, o) in self.order_by.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                print_word(f, &o.field)?;
                match o.direction {
                    Some(Direction::Asc) => f.write_str(" ASC")?,
                    Some(Direction::Desc) => f.write_str(" DESC")?,
                    None => {}
                }
            }
        }
        Ok(())
    }
}
