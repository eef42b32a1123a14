//! The CQL subset connectors use, over a site's pages: `type`, `space`
//! (`space.key`), `title` (`=`, `~`), `text ~`, `lastmodified` / `created`
//! (`=`, `!=`, `>`, `>=`, `<`, `<=` with dates or `now("-7d")`-style
//! functions), `id`, `label`, `parent`, `ancestor`; `=`, `!=`, `IN`,
//! `NOT IN`, `~`, `!~`; `AND`, `OR`, `NOT`, parentheses; `ORDER BY` field
//! `[ASC|DESC]`, several allowed.
//!
//! `~` is word containment (*guess* for Confluence's stemmed full-text
//! search): every word of the value must start a word of the title (for
//! `title`) or of the title and body text (for `text`), case-insensitively;
//! a trailing `*` is a prefix wildcard, which this rule already is.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::model::{Page, Site, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlError {
    pub message: String,
}

fn err(message: impl Into<String>) -> CqlError {
    CqlError {
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
}

fn lex(input: &str) -> Result<Vec<Tok>, CqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '"' | '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err("unterminated string")),
                        Some('\\') => {
                            if let Some(n) = chars.get(i + 1) {
                                s.push(*n);
                            }
                            i += 2;
                        }
                        Some(q) if *q == c => {
                            i += 1;
                            break;
                        }
                        Some(o) => {
                            s.push(*o);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '!' | '>' | '<' | '=' | '~' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    "!=" => "!=",
                    "!~" => "!~",
                    ">=" => ">=",
                    "<=" => "<=",
                    _ => match c {
                        '>' => ">",
                        '<' => "<",
                        '=' => "=",
                        '~' => "~",
                        _ => return Err(err("unexpected '!'")),
                    },
                };
                i += op.len();
                out.push(Tok::Op(op));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()\",'!<>=~".contains(chars[i])
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Lit(String),
    Func(String, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause {
        field: Field,
        op: &'static str,
        values: Vec<Val>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Space,
    Title,
    Text,
    LastModified,
    Created,
    Id,
    Label,
    Parent,
    Ancestor,
}

impl Field {
    fn named(name: &str) -> Option<Field> {
        Some(match name.to_ascii_lowercase().as_str() {
            "type" => Field::Type,
            "space" | "space.key" => Field::Space,
            "title" => Field::Title,
            "text" => Field::Text,
            "lastmodified" => Field::LastModified,
            "created" => Field::Created,
            "id" | "content" => Field::Id,
            "label" => Field::Label,
            "parent" => Field::Parent,
            "ancestor" => Field::Ancestor,
            _ => return None,
        })
    }

    fn allows(self, op: &str) -> bool {
        match self {
            Field::Title => matches!(op, "=" | "!=" | "~" | "!~" | "IN" | "NOT IN"),
            Field::Text => matches!(op, "~" | "!~"),
            Field::LastModified | Field::Created => {
                matches!(op, "=" | "!=" | ">" | ">=" | "<" | "<=")
            }
            _ => matches!(op, "=" | "!=" | "IN" | "NOT IN"),
        }
    }

    fn is_date(self) -> bool {
        matches!(self, Field::LastModified | Field::Created)
    }
}

/// A parsed query: a condition (none = everything) and its order.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    expr: Option<Expr>,
    order: Vec<(Field, bool)>,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, CqlError> {
        let mut left = self.and()?;
        while is_kw(self.peek(), "OR") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, CqlError> {
        let mut left = self.not()?;
        while is_kw(self.peek(), "AND") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, CqlError> {
        if is_kw(self.peek(), "NOT") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err(err("expected ')'"));
            }
            return Ok(e);
        }
        self.clause()
    }

    fn value(&mut self) -> Result<Val, CqlError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Val::Lit(s)),
            Some(Tok::Word(w)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let mut args = Vec::new();
                    loop {
                        match self.next() {
                            Some(Tok::RParen) => break,
                            Some(Tok::Comma) => {}
                            Some(Tok::Str(s)) | Some(Tok::Word(s)) => args.push(s),
                            _ => return Err(err("bad function arguments")),
                        }
                    }
                    Ok(Val::Func(w, args))
                } else {
                    Ok(Val::Lit(w))
                }
            }
            _ => Err(err("expected a value")),
        }
    }

    fn clause(&mut self) -> Result<Expr, CqlError> {
        let Some(Tok::Word(name)) = self.next() else {
            return Err(err("expected a field"));
        };
        let field = Field::named(&name).ok_or_else(|| err(format!("unknown field: {name}")))?;
        let op: &'static str = match self.next() {
            Some(Tok::Op(o)) => o,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => "IN",
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NOT") && is_kw(self.peek(), "IN") => {
                self.pos += 1;
                "NOT IN"
            }
            _ => return Err(err("expected an operator")),
        };
        if !field.allows(op) {
            return Err(err(format!(
                "operator {op} is not supported by field {name}"
            )));
        }
        let values = if op.ends_with("IN") {
            if self.next() != Some(Tok::LParen) {
                return Err(err("expected '('"));
            }
            let mut vals = Vec::new();
            loop {
                vals.push(self.value()?);
                match self.next() {
                    Some(Tok::Comma) => {}
                    Some(Tok::RParen) => break,
                    _ => return Err(err("expected ',' or ')'")),
                }
            }
            vals
        } else {
            vec![self.value()?]
        };
        if field.is_date() {
            for v in &values {
                date_of(v, Utc::now())?;
            }
        }
        Ok(Expr::Clause { field, op, values })
    }
}

/// Parse a CQL string. An error's message is what follows Confluence's
/// "Could not parse cql : " (see `super::v1`).
pub fn parse(cql: &str) -> Result<Query, CqlError> {
    let toks = lex(cql)?;
    let order_at = toks
        .windows(2)
        .position(|w| is_kw(w.first(), "ORDER") && is_kw(w.get(1), "BY"));
    let (cond, order_toks) = match order_at {
        Some(i) => (toks[..i].to_vec(), toks[i + 2..].to_vec()),
        None => (toks, Vec::new()),
    };
    let expr = if cond.is_empty() {
        None
    } else {
        let mut p = Parser { toks: cond, pos: 0 };
        let e = p.or()?;
        if p.pos < p.toks.len() {
            return Err(err("unexpected input after the query"));
        }
        Some(e)
    };
    if order_at.is_some() && order_toks.is_empty() {
        return Err(err("expected a field after ORDER BY"));
    }
    let mut order = Vec::new();
    let mut it = order_toks.into_iter().peekable();
    while let Some(t) = it.next() {
        let Tok::Word(name) = t else {
            return Err(err("expected a field after ORDER BY"));
        };
        let field = Field::named(&name)
            .filter(|f| !matches!(f, Field::Text | Field::Label | Field::Ancestor))
            .ok_or_else(|| err(format!("cannot order by {name}")))?;
        let mut desc = false;
        if let Some(Tok::Word(d)) = it.peek() {
            if d.eq_ignore_ascii_case("DESC") || d.eq_ignore_ascii_case("ASC") {
                desc = d.eq_ignore_ascii_case("DESC");
                it.next();
            }
        }
        order.push((field, desc));
        if it.peek() == Some(&Tok::Comma) {
            it.next();
        }
    }
    if expr.is_none() {
        // Confluence refuses a query that only orders.
        return Err(err("a query needs at least one condition"));
    }
    Ok(Query { expr, order })
}

/// `"-7d"`-style offsets of the date functions: y, M (months, as 30 days),
/// w, d, h, m.
fn offset(arg: Option<&String>) -> Result<Duration, CqlError> {
    let Some(a) = arg.map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return Ok(Duration::zero());
    };
    let (sign, rest) = match a.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, a.strip_prefix('+').unwrap_or(a)),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let n: i64 = rest[..split]
        .parse()
        .map_err(|_| err(format!("bad date offset: {a}")))?;
    let d = match &rest[split..] {
        "y" => Duration::days(365 * n),
        "M" => Duration::days(30 * n),
        "w" => Duration::weeks(n),
        "d" | "" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        _ => return Err(err(format!("bad date offset: {a}"))),
    };
    Ok(d * sign)
}

/// A date value: `yyyy-MM-dd`, `yyyy/MM/dd`, either with ` HH:mm`, or a
/// function (`now`, `startOfDay`, `startOfWeek`, `startOfMonth`,
/// `startOfYear`, each with an optional offset). UTC. The flag says the
/// value names a whole day (for `=`).
fn date_of(v: &Val, now: Timestamp) -> Result<(Timestamp, bool), CqlError> {
    match v {
        Val::Lit(s) => {
            let s = s.trim().replace('/', "-");
            if let Ok(dt) = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M") {
                return Ok((Utc.from_utc_datetime(&dt), false));
            }
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|dt| (Utc.from_utc_datetime(&dt), true))
                .ok_or_else(|| err(format!("invalid date: {s}")))
        }
        Val::Func(name, args) => {
            let day = now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map(|d| Utc.from_utc_datetime(&d));
            let day = day.unwrap_or(now);
            let base = match name.to_ascii_lowercase().as_str() {
                "now" => now,
                "startofday" => day,
                "startofweek" => {
                    day - Duration::days(i64::from(now.weekday().num_days_from_sunday()))
                }
                "startofmonth" => day - Duration::days(i64::from(now.day0())),
                "startofyear" => day - Duration::days(i64::from(now.ordinal0())),
                _ => return Err(err(format!("unknown function: {name}()"))),
            };
            Ok((base + offset(args.first())?, false))
        }
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A search result's `excerpt`: the body's text, at most 200 characters.
pub fn excerpt(body: &str) -> String {
    let text = strip_tags(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(200).collect()
}

fn contains_words(haystack: &str, needle: &str) -> bool {
    let hay = words(haystack);
    let want = words(needle);
    !want.is_empty()
        && want
            .iter()
            .all(|w| hay.iter().any(|h| h.starts_with(w.as_str())))
}

fn lit(v: &Val) -> String {
    match v {
        Val::Lit(s) => s.clone(),
        Val::Func(n, _) => n.clone(),
    }
}

fn eval(e: &Expr, p: &Page, site: &Site, now: Timestamp) -> bool {
    match e {
        Expr::And(a, b) => eval(a, p, site, now) && eval(b, p, site, now),
        Expr::Or(a, b) => eval(a, p, site, now) || eval(b, p, site, now),
        Expr::Not(a) => !eval(a, p, site, now),
        Expr::Clause { field, op, values } => {
            let negate = matches!(*op, "!=" | "!~" | "NOT IN");
            let hit = match field {
                Field::LastModified | Field::Created => {
                    let t = if *field == Field::Created {
                        p.created_at
                    } else {
                        p.version_created_at
                    };
                    values.iter().any(|v| {
                        let Ok((d, whole_day)) = date_of(v, now) else {
                            return false;
                        };
                        match *op {
                            ">" => t > d,
                            ">=" => t >= d,
                            "<" => t < d,
                            "<=" => t <= d,
                            _ if whole_day => t >= d && t < d + Duration::days(1),
                            _ => t == d,
                        }
                    })
                }
                Field::Text => values.iter().any(|v| {
                    contains_words(&format!("{} {}", p.title, strip_tags(&p.body)), &lit(v))
                }),
                Field::Title if matches!(*op, "~" | "!~") => {
                    values.iter().any(|v| contains_words(&p.title, &lit(v)))
                }
                Field::Title => values.iter().any(|v| p.title.eq_ignore_ascii_case(&lit(v))),
                Field::Type => values.iter().any(|v| lit(v).eq_ignore_ascii_case("page")),
                Field::Space => {
                    let key = super::space_key(site, p.space_id);
                    values.iter().any(|v| lit(v).eq_ignore_ascii_case(key))
                }
                Field::Id => values.iter().any(|v| lit(v) == p.id.to_string()),
                Field::Label => values.iter().any(|v| {
                    p.labels
                        .iter()
                        .any(|l| l.name.eq_ignore_ascii_case(&lit(v)))
                }),
                Field::Parent => values
                    .iter()
                    .any(|v| p.parent_id.is_some_and(|id| id.to_string() == lit(v))),
                Field::Ancestor => values.iter().any(|v| {
                    ancestors(site, p)
                        .iter()
                        .any(|a| a.id.to_string() == lit(v))
                }),
            };
            hit != negate
        }
    }
}

/// A page's ancestors, its parent first.
pub fn ancestors<'a>(site: &'a Site, page: &Page) -> Vec<&'a Page> {
    let mut chain = Vec::new();
    let mut cur = page.parent_id;
    while let Some(a) = cur.and_then(|c| site.pages.iter().find(|x| x.id == c)) {
        // A cycle cannot be written (`pages_write` refuses it); stop anyway.
        if chain.iter().any(|x: &&Page| x.id == a.id) {
            break;
        }
        chain.push(a);
        cur = a.parent_id;
    }
    chain
}

/// The site's current pages that match, in the query's order (without
/// `ORDER BY`: id ascending, *guess*: Confluence orders by relevance).
pub fn run<'a>(q: &Query, site: &'a Site, now: Timestamp) -> Vec<&'a Page> {
    let mut pages: Vec<&Page> = site
        .pages
        .iter()
        .filter(|p| p.status == "current")
        .filter(|p| q.expr.as_ref().is_none_or(|e| eval(e, p, site, now)))
        .collect();
    pages.sort_by(|a, b| {
        for (field, desc) in &q.order {
            let ord = match field {
                Field::LastModified => a.version_created_at.cmp(&b.version_created_at),
                Field::Created => a.created_at.cmp(&b.created_at),
                Field::Title => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
                Field::Space => a.space_id.cmp(&b.space_id),
                _ => a.id.cmp(&b.id),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    pages
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_connector_subset() {
        for ok in [
            "type = page",
            "type=page AND space = ENG",
            "space in (ENG, \"PROD\") and title ~ \"runbook*\"",
            "text ~ 'deploy' OR NOT label = release",
            "lastmodified > \"2025-01-01 10:00\" ORDER BY lastmodified",
            "lastmodified >= now(\"-7d\") order by lastmodified desc, title",
            "created < startOfMonth() AND id != 5",
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok));
        }
        for bad in [
            "",
            "type",
            "type = ",
            "foo = bar",
            "title > x",
            "text = x",
            "lastmodified > \"yesterday\"",
            "(type = page",
            "type = page ORDER BY",
            "ORDER BY lastmodified",
            "title ~ \"open",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn offsets_and_words() {
        assert_eq!(
            offset(Some(&"-7d".to_string())).unwrap(),
            Duration::days(-7)
        );
        assert_eq!(offset(Some(&"2h".to_string())).unwrap(), Duration::hours(2));
        assert!(offset(Some(&"7x".to_string())).is_err());
        assert!(contains_words("Deployment Runbook 3", "runbook deploy"));
        assert!(!contains_words("Deployment Runbook 3", "rollback"));
        assert!(contains_words("<p>Hello world</p>", "WORLD"));
    }
}
