//! Resolving a parsed query against one site (fields, values, functions,
//! dates) and evaluating it over issues.

use std::cmp::Ordering;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use super::ast::{Clause, Direction, Expr, Op, Operand, OrderItem, Query};
use super::JqlError;

mod history;
use crate::model::{Issue, Site, SprintState, Timestamp, User};

/// What a query is evaluated against.
pub struct EvalCtx<'a> {
    pub site: &'a Site,
    pub users: &'a [User],
    pub now: Timestamp,
    /// The caller, for `currentUser()`.
    pub current_user: Option<&'a str>,
    /// Strict: unknown values are errors (search). Lenient: they simply match
    /// nothing (webhook filters evaluated long after registration).
    pub strict: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Project,
    Key,
    IssueType,
    Status,
    StatusCategory,
    Sprint,
    Assignee,
    Reporter,
    Labels,
    Summary,
    Description,
    Text,
    Created,
    Updated,
    Priority,
    Rank,
    Resolution,
    /// `resolved` / `resolutiondate`.
    Resolved,
    Parent,
    /// A numeric custom field by id (the story points field).
    Number(String),
    /// Any other custom field by id.
    Custom(String),
    /// `issue.property[…]`: atlassim stores no issue properties.
    Property,
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum OrdVal {
    Time(Timestamp),
    Num(f64),
    Key(String, u64),
}

#[derive(Debug, Clone)]
struct Atom {
    empty: bool,
    /// Lower-cased values the field may equal.
    set: Vec<String>,
    ord: Option<OrdVal>,
}

#[derive(Debug, Clone)]
enum CExpr {
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    Not(Box<CExpr>),
    Pred {
        field: Field,
        op: Op,
        atoms: Vec<Atom>,
        text: String,
    },
    History(Box<history::CompiledHistory>),
}

/// A query resolved against a site, ready to test issues and sort them.
#[derive(Debug, Clone)]
pub struct Compiled {
    expr: Option<CExpr>,
    order: Vec<(Field, Direction)>,
}

fn no_field(name: &str) -> JqlError {
    JqlError::validation(format!(
        "Field '{name}' does not exist or you do not have permission to view it."
    ))
}

fn resolve_field(name: &str, site: &Site) -> Result<Field, JqlError> {
    let lower = name.to_ascii_lowercase();
    let f = match lower.as_str() {
        "project" => Field::Project,
        "key" | "issuekey" | "issue" | "id" => Field::Key,
        "issuetype" | "type" => Field::IssueType,
        "status" => Field::Status,
        "statuscategory" => Field::StatusCategory,
        "sprint" => Field::Sprint,
        "assignee" => Field::Assignee,
        "reporter" => Field::Reporter,
        "labels" | "label" => Field::Labels,
        "summary" => Field::Summary,
        "description" => Field::Description,
        "text" => Field::Text,
        "created" | "createddate" => Field::Created,
        "updated" | "updateddate" => Field::Updated,
        "priority" => Field::Priority,
        "rank" => Field::Rank,
        "resolution" => Field::Resolution,
        "resolved" | "resolutiondate" => Field::Resolved,
        "parent" => Field::Parent,
        _ if lower.starts_with("issue.property[") => Field::Property,
        _ => {
            let custom_id =
                if let Some(n) = lower.strip_prefix("cf[").and_then(|r| r.strip_suffix(']')) {
                    format!("customfield_{n}")
                } else if lower == site.story_points_field.name.to_ascii_lowercase() {
                    site.story_points_field.id.clone()
                } else if lower == site.sprint_field.name.to_ascii_lowercase() {
                    site.sprint_field.id.clone()
                } else if lower == site.rank_field.name.to_ascii_lowercase() {
                    site.rank_field.id.clone()
                } else {
                    return Err(no_field(name));
                };
            if custom_id == site.story_points_field.id {
                Field::Number(custom_id)
            } else if custom_id == site.sprint_field.id {
                Field::Sprint
            } else if custom_id == site.rank_field.id {
                Field::Rank
            } else if site
                .issues
                .values()
                .any(|i| i.custom_fields.contains_key(&custom_id))
            {
                Field::Custom(custom_id)
            } else {
                return Err(no_field(name));
            }
        }
    };
    Ok(f)
}

fn supported_ops(field: &Field) -> &'static [Op] {
    use Op::*;
    match field {
        Field::Project
        | Field::IssueType
        | Field::Status
        | Field::StatusCategory
        | Field::Sprint
        | Field::Assignee
        | Field::Reporter
        | Field::Labels
        | Field::Custom(_)
        | Field::Resolution
        | Field::Property => &[Eq, Ne, In, NotIn, Is, IsNot],
        Field::Parent => &[Eq, Ne, In, NotIn],
        Field::Key => &[Eq, Ne, In, NotIn, Gt, Ge, Lt, Le],
        Field::Priority | Field::Created | Field::Updated | Field::Resolved | Field::Number(_) => {
            &[Eq, Ne, In, NotIn, Is, IsNot, Gt, Ge, Lt, Le]
        }
        Field::Summary | Field::Text => &[Like, NotLike],
        Field::Description => &[Like, NotLike, Is, IsNot],
        Field::Rank => &[],
    }
}

fn priority_weight(name: &str) -> f64 {
    match name.to_ascii_lowercase().as_str() {
        "lowest" => 1.0,
        "low" => 2.0,
        "medium" => 3.0,
        "high" => 4.0,
        "highest" => 5.0,
        _ => 0.0,
    }
}

fn split_key(key: &str) -> Option<(String, u64)> {
    let (p, n) = key.rsplit_once('-')?;
    Some((p.to_ascii_uppercase(), n.parse().ok()?))
}

const DATE_HELP: &str = "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.";

/// A period like `-15m`, `4w 2d`, `+1h` (Jira's units: w, d, h, m).
fn parse_period(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total = Duration::zero();
    let mut any = false;
    for part in rest.split_whitespace() {
        let unit = part.chars().last()?;
        let n: i64 = part[..part.len() - unit.len_utf8()].parse().ok()?;
        total += match unit {
            'w' => Duration::weeks(n),
            'd' => Duration::days(n),
            'h' => Duration::hours(n),
            'm' => Duration::minutes(n),
            _ => return None,
        };
        any = true;
    }
    any.then_some(total * sign)
}

/// Jira reads dates in the user's zone; every simulated user is on UTC.
fn parse_date(s: &str, now: Timestamp) -> Option<Timestamp> {
    let t = s.trim();
    for fmt in ["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&dt));
        }
    }
    for fmt in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)));
        }
    }
    parse_period(t).map(|d| now + d)
}

fn start_of_day(t: Timestamp) -> Timestamp {
    Utc.from_utc_datetime(&t.date_naive().and_time(NaiveTime::MIN))
}

fn date_function(
    name: &str,
    args: &[String],
    now: Timestamp,
) -> Option<Result<Timestamp, JqlError>> {
    let offset = match args.first() {
        None => Duration::zero(),
        Some(a) => match parse_period(a) {
            Some(d) => d,
            None => {
                return Some(Err(JqlError::validation(format!(
                    "Invalid date format '{a}' for function '{name}'."
                ))))
            }
        },
    };
    let day = start_of_day(now);
    let base = match name.to_ascii_lowercase().as_str() {
        "now" => now,
        "startofday" => day,
        "endofday" => day + Duration::days(1) - Duration::milliseconds(1),
        "startofweek" => day - Duration::days(i64::from(now.weekday().num_days_from_sunday())),
        "endofweek" => {
            day - Duration::days(i64::from(now.weekday().num_days_from_sunday()))
                + Duration::days(7)
                - Duration::milliseconds(1)
        }
        "startofmonth" => {
            let d = NaiveDate::from_ymd_opt(now.year(), now.month(), 1)?;
            Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
        }
        "startofyear" => {
            let d = NaiveDate::from_ymd_opt(now.year(), 1, 1)?;
            Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
        }
        _ => return None,
    };
    Some(Ok(base + offset))
}

fn unknown_function(name: &str) -> JqlError {
    JqlError::validation(format!("Unable to find JQL function '{name}()'."))
}

fn value_missing(v: &str, field: &str) -> JqlError {
    JqlError::validation(format!(
        "The value '{v}' does not exist for the field '{field}'."
    ))
}

impl Compiled {
    pub fn new(query: &Query, ctx: &EvalCtx<'_>) -> Result<Compiled, JqlError> {
        let expr = query
            .clause
            .as_ref()
            .map(|e| compile_expr(e, ctx))
            .transpose()?;
        let mut order = Vec::new();
        for OrderItem { field, direction } in &query.order_by {
            let f = resolve_field(field, ctx.site)?;
            if matches!(f, Field::Text | Field::Property) {
                return Err(JqlError::validation(format!(
                    "Field '{field}' does not support sorting."
                )));
            }
            order.push((f, direction.unwrap_or(Direction::Asc)));
        }
        Ok(Compiled { expr, order })
    }

    /// No search restriction at all (empty, or only `ORDER BY`).
    pub fn is_unbounded(&self) -> bool {
        self.expr.is_none()
    }

    pub fn has_order(&self) -> bool {
        !self.order.is_empty()
    }

    pub fn matches(&self, issue: &Issue, site: &Site) -> bool {
        let _ = site;
        self.expr.as_ref().is_none_or(|e| eval(e, issue))
    }

    /// Sorts by the query's ORDER BY; ties (and queries without ORDER BY)
    /// fall back to issue id, so paging is stable.
    pub fn sort(&self, issues: &mut [&Issue], site: &Site) {
        sort_issues(issues, site, &self.order_fields());
    }

    /// Like [`Compiled::sort`], but only the first `end` issues are kept, in order.
    pub fn sort_prefix(&self, issues: &mut Vec<&Issue>, site: &Site, end: usize) {
        sort_prefix(issues, site, &self.order_fields(), end);
    }

    fn order_fields(&self) -> Vec<(OrderField, Direction)> {
        self.order
            .iter()
            .map(|(f, d)| (OrderField(f.clone()), *d))
            .collect()
    }
}

/// An opaque sortable field, so `sort_issues` can be used with rank order
/// from outside (agile endpoints).
#[derive(Debug, Clone)]
pub struct OrderField(Field);

impl OrderField {
    pub fn rank() -> Self {
        OrderField(Field::Rank)
    }
}

pub fn sort_issues(issues: &mut [&Issue], site: &Site, order: &[(OrderField, Direction)]) {
    issues.sort_by(|a, b| compare(a, b, site, order));
}

/// Sorts only as far as a page needs: afterwards `issues[..end]` holds the
/// first `end` issues in order (the rest is unordered). A page deep into a
/// large result costs O(n), not O(n log n).
pub fn sort_prefix(
    issues: &mut Vec<&Issue>,
    site: &Site,
    order: &[(OrderField, Direction)],
    end: usize,
) {
    if end < issues.len() {
        issues.select_nth_unstable_by(end, |a, b| compare(a, b, site, order));
        issues.truncate(end);
    }
    sort_issues(issues, site, order);
}

fn compare(a: &Issue, b: &Issue, site: &Site, order: &[(OrderField, Direction)]) -> Ordering {
    for (OrderField(f), dir) in order {
        let ka = sort_key(f, a, site);
        let kb = sort_key(f, b, site);
        // Empty values sort last ascending, first descending (as Jira).
        let o = match (ka, kb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        };
        let o = if *dir == Direction::Desc {
            o.reverse()
        } else {
            o
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.id.cmp(&b.id)
}

#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Str(String),
    Num(f64),
    Time(Timestamp),
    Key(String, u64),
}

fn sort_key(f: &Field, i: &Issue, site: &Site) -> Option<SortKey> {
    let user_name = |id: &str| site_user_name(site, id);
    Some(match f {
        Field::Project => SortKey::Str(
            site.project_by_id(i.project_id)
                .map(|p| p.key.clone())
                .unwrap_or_default(),
        ),
        Field::Key => {
            let (p, n) = split_key(&i.key)?;
            SortKey::Key(p, n)
        }
        Field::IssueType => SortKey::Str(i.issue_type.name.to_ascii_lowercase()),
        Field::Status => SortKey::Str(i.status.name.to_ascii_lowercase()),
        Field::StatusCategory => SortKey::Num(match i.status.category_key.as_str() {
            "new" => 1.0,
            "indeterminate" => 2.0,
            _ => 3.0,
        }),
        Field::Sprint => SortKey::Num(i.sprint_id? as f64),
        Field::Assignee => SortKey::Str(user_name(i.assignee.as_deref()?)),
        Field::Reporter => SortKey::Str(user_name(&i.reporter)),
        Field::Labels => SortKey::Str(i.labels.first()?.clone()),
        Field::Summary => SortKey::Str(i.summary.to_lowercase()),
        Field::Description | Field::Text | Field::Property => return None,
        Field::Created => SortKey::Time(i.created),
        Field::Resolved => SortKey::Time(i.resolution_date?),
        Field::Resolution => SortKey::Str(i.resolution.clone()?.to_lowercase()),
        Field::Parent => SortKey::Num(i.extra.parent_id? as f64),
        Field::Updated => SortKey::Time(i.updated),
        Field::Priority => SortKey::Num(priority_weight(&i.priority)),
        Field::Rank => SortKey::Str(i.rank.clone()),
        Field::Number(id) => SortKey::Num(number_value(id, i)?),
        Field::Custom(id) => SortKey::Str(i.custom_fields.get(id)?.to_string()),
    })
}

fn site_user_name(_site: &Site, account_id: &str) -> String {
    account_id.to_string()
}

fn number_value(id: &str, i: &Issue) -> Option<f64> {
    // The story points field is stored apart; any other numeric custom field
    // lives in `custom_fields`.
    if let Some(v) = i.custom_fields.get(id) {
        return v.as_f64();
    }
    i.story_points
}

fn compile_expr(e: &Expr, ctx: &EvalCtx<'_>) -> Result<CExpr, JqlError> {
    Ok(match e {
        Expr::And(a, b) => CExpr::And(
            Box::new(compile_expr(a, ctx)?),
            Box::new(compile_expr(b, ctx)?),
        ),
        Expr::Or(a, b) => CExpr::Or(
            Box::new(compile_expr(a, ctx)?),
            Box::new(compile_expr(b, ctx)?),
        ),
        Expr::Not(a) => CExpr::Not(Box::new(compile_expr(a, ctx)?)),
        Expr::Clause(c) => compile_clause(c, ctx)?,
        Expr::History(h) => CExpr::History(Box::new(history::compile(h, ctx)?)),
    })
}

fn compile_clause(c: &Clause, ctx: &EvalCtx<'_>) -> Result<CExpr, JqlError> {
    let field = resolve_field(&c.field, ctx.site)?;
    if !supported_ops(&field).contains(&c.op) {
        return Err(JqlError::validation(format!(
            "The operator '{}' is not supported by the '{}' field.",
            c.op.as_str(),
            c.field
        )));
    }
    let raw: Vec<&Operand> = match &c.operand {
        Operand::List(items) => items.iter().collect(),
        o => vec![o],
    };
    let mut atoms = Vec::new();
    for o in raw {
        atoms.extend(resolve_atom(&field, &c.field, o, ctx)?);
    }
    let text = match &c.operand {
        Operand::Value(v) => v.to_lowercase(),
        _ => String::new(),
    };
    Ok(CExpr::Pred {
        field,
        op: c.op,
        atoms,
        text,
    })
}

fn resolve_atom(
    field: &Field,
    name: &str,
    o: &Operand,
    ctx: &EvalCtx<'_>,
) -> Result<Vec<Atom>, JqlError> {
    let site = ctx.site;
    let atom = |set: Vec<String>| Atom {
        empty: false,
        set,
        ord: None,
    };
    let v = match o {
        Operand::Empty => {
            return Ok(vec![Atom {
                empty: true,
                set: vec![],
                ord: None,
            }])
        }
        Operand::List(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(resolve_atom(field, name, i, ctx)?);
            }
            return Ok(out);
        }
        Operand::Function(f, args) => {
            let lf = f.to_ascii_lowercase();
            return match (field, lf.as_str()) {
                (Field::Assignee | Field::Reporter, "currentuser") => Ok(vec![atom(
                    ctx.current_user
                        .map(|u| vec![u.to_ascii_lowercase()])
                        .unwrap_or_default(),
                )]),
                (Field::Sprint, "opensprints" | "closedsprints" | "futuresprints") => {
                    let ids = site
                        .sprints
                        .iter()
                        .filter(|s| match lf.as_str() {
                            "opensprints" => s.state != SprintState::Closed,
                            "closedsprints" => s.state == SprintState::Closed,
                            _ => s.state == SprintState::Future,
                        })
                        .map(|s| s.id.to_string())
                        .collect();
                    Ok(vec![atom(ids)])
                }
                (Field::Created | Field::Updated | Field::Resolved, _) => {
                    match date_function(f, args, ctx.now) {
                        Some(t) => Ok(vec![Atom {
                            empty: false,
                            set: vec![],
                            ord: Some(OrdVal::Time(t?)),
                        }]),
                        None => Err(unknown_function(f)),
                    }
                }
                (
                    _,
                    "currentuser" | "opensprints" | "closedsprints" | "futuresprints" | "now"
                    | "startofday" | "endofday" | "startofweek" | "endofweek" | "startofmonth"
                    | "startofyear",
                ) => Err(JqlError::validation(format!(
                    "Function '{f}' is not supported by the field '{name}'."
                ))),
                _ => Err(unknown_function(f)),
            };
        }
        Operand::Value(v) => v,
    };
    let lower = v.to_lowercase();
    let strict = ctx.strict;
    let a = match field {
        Field::Project => {
            let ids: Vec<String> = site
                .projects
                .iter()
                .filter(|p| {
                    p.key.eq_ignore_ascii_case(v)
                        || p.id.to_string() == *v
                        || p.name.eq_ignore_ascii_case(v)
                })
                .map(|p| p.id.to_string())
                .collect();
            if ids.is_empty() && strict {
                return Err(value_missing(v, name));
            }
            atom(ids)
        }
        Field::Key => {
            let found = site.issue(v).is_some();
            if !found && strict {
                let looks_like_id = v.parse::<u64>().is_ok();
                let known_project =
                    split_key(v).is_some_and(|(p, _)| site.project_by_key_or_id(&p).is_some());
                if looks_like_id || known_project {
                    return Err(JqlError::validation(format!(
                        "An issue with key '{}' does not exist for field '{name}'.",
                        v.to_uppercase()
                    )));
                }
                return Err(JqlError::validation(format!(
                    "The issue key '{v}' for field '{name}' is invalid."
                )));
            }
            let key = site
                .issue(v)
                .map(|i| i.key.clone())
                .unwrap_or_else(|| v.to_uppercase());
            Atom {
                empty: false,
                set: vec![key.to_lowercase()],
                ord: split_key(&key).map(|(p, n)| OrdVal::Key(p, n)),
            }
        }
        Field::IssueType | Field::Status | Field::StatusCategory | Field::Priority => {
            let known = site
                .issues
                .values()
                .any(|i| issue_strings(field, i).contains(&lower))
                || builtin_values(field).contains(&lower.as_str());
            if !known && strict {
                return Err(value_missing(v, name));
            }
            Atom {
                empty: false,
                set: vec![lower.clone()],
                ord: (*field == Field::Priority).then(|| OrdVal::Num(priority_weight(v))),
            }
        }
        Field::Sprint => {
            let ids: Vec<String> = site
                .sprints
                .iter()
                .filter(|s| s.id.to_string() == *v || s.name.eq_ignore_ascii_case(v))
                .map(|s| s.id.to_string())
                .collect();
            if ids.is_empty() && strict {
                return Err(value_missing(v, name));
            }
            atom(ids)
        }
        Field::Assignee | Field::Reporter => {
            let ids: Vec<String> = ctx
                .users
                .iter()
                .filter(|u| {
                    u.account_id == *v
                        || u.email.eq_ignore_ascii_case(v)
                        || u.name.eq_ignore_ascii_case(v)
                })
                .map(|u| u.account_id.to_ascii_lowercase())
                .collect();
            if ids.is_empty() && strict {
                return Err(JqlError::validation(format!(
                    "The value '{v}' does not exist for the field '{name}'."
                )));
            }
            // Lenient (webhook filters): an unknown value is taken as an account id.
            atom(if ids.is_empty() {
                vec![lower.clone()]
            } else {
                ids
            })
        }
        Field::Labels | Field::Custom(_) | Field::Property => atom(vec![lower]),
        Field::Summary | Field::Description | Field::Text | Field::Rank => atom(vec![lower]),
        Field::Resolution if lower == "unresolved" => Atom {
            empty: true,
            set: vec![],
            ord: None,
        },
        Field::Resolution => {
            if crate::jira::transitions::resolution_by(v).is_none() && strict {
                return Err(value_missing(v, name));
            }
            atom(vec![lower.clone()])
        }
        Field::Parent => {
            let parent = site.issue(v);
            if parent.is_none() && strict {
                return Err(JqlError::validation(format!(
                    "An issue with key '{}' does not exist for field '{name}'.",
                    v.to_uppercase()
                )));
            }
            atom(parent.map(|p| vec![p.id.to_string()]).unwrap_or_default())
        }
        Field::Created | Field::Updated | Field::Resolved => match parse_date(v, ctx.now) {
            Some(t) => Atom {
                empty: false,
                set: vec![],
                ord: Some(OrdVal::Time(t)),
            },
            None => {
                return Err(JqlError::validation(format!(
                    "Date value '{v}' for field '{name}' is invalid. {DATE_HELP}"
                )))
            }
        },
        Field::Number(_) => match v.parse::<f64>() {
            Ok(n) => Atom {
                empty: false,
                set: vec![],
                ord: Some(OrdVal::Num(n)),
            },
            Err(_) => {
                return Err(JqlError::validation(format!(
                    "The value '{v}' for field '{name}' is invalid. It must be a number."
                )))
            }
        },
    };
    Ok(vec![a])
}

fn builtin_values(field: &Field) -> &'static [&'static str] {
    match field {
        Field::IssueType => &["story", "bug", "task", "epic", "subtask", "sub-task"],
        Field::Status => &["to do", "in progress", "done", "backlog", "in review"],
        Field::StatusCategory => &[
            "new",
            "indeterminate",
            "done",
            "to do",
            "in progress",
            "2",
            "4",
            "3",
            "undefined",
        ],
        Field::Priority => &["highest", "high", "medium", "low", "lowest"],
        _ => &[],
    }
}

fn category_name(key: &str) -> (&'static str, &'static str) {
    match key {
        "new" => ("to do", "2"),
        "indeterminate" => ("in progress", "4"),
        "done" => ("done", "3"),
        _ => ("no category", "1"),
    }
}

/// The lower-cased strings an issue's field can be equal to; empty = EMPTY.
fn issue_strings(field: &Field, i: &Issue) -> Vec<String> {
    match field {
        Field::Project => vec![i.project_id.to_string()],
        Field::Key => vec![i.key.to_lowercase(), i.id.to_string()],
        Field::IssueType => vec![
            i.issue_type.name.to_lowercase(),
            i.issue_type.id.to_lowercase(),
        ],
        Field::Status => vec![i.status.name.to_lowercase(), i.status.id.to_lowercase()],
        Field::StatusCategory => {
            let (n, id) = category_name(&i.status.category_key);
            vec![i.status.category_key.clone(), n.into(), id.into()]
        }
        Field::Sprint => i.sprint_id.map(|s| vec![s.to_string()]).unwrap_or_default(),
        Field::Assignee => i.assignee.iter().map(|a| a.to_ascii_lowercase()).collect(),
        Field::Reporter => vec![i.reporter.to_ascii_lowercase()],
        Field::Labels => i.labels.iter().map(|l| l.to_lowercase()).collect(),
        Field::Priority => vec![i.priority.to_lowercase()],
        Field::Custom(id) => match i.custom_fields.get(id) {
            None | Some(serde_json::Value::Null) => vec![],
            Some(serde_json::Value::String(s)) => vec![s.to_lowercase()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_lowercase)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
            Some(serde_json::Value::Object(o)) => o
                .get("value")
                .or_else(|| o.get("name"))
                .map(|v| vec![v.as_str().unwrap_or_default().to_lowercase()])
                .unwrap_or_default(),
            Some(v) => vec![v.to_string()],
        },
        Field::Description => i
            .description
            .as_ref()
            .map(|d| vec![adf_text(d).to_lowercase()])
            .filter(|v| v.iter().any(|s| !s.is_empty()))
            .unwrap_or_default(),
        Field::Summary => vec![i.summary.to_lowercase()],
        // `text` searches summary, description and comments, as Jira's does.
        Field::Text => {
            let mut t = i.summary.to_lowercase();
            let docs = i
                .description
                .iter()
                .chain(i.comments.iter().map(|c| &c.body));
            for d in docs {
                t.push(' ');
                t.push_str(&adf_text(d).to_lowercase());
            }
            vec![t]
        }
        Field::Resolution => i
            .resolution
            .iter()
            .flat_map(|r| {
                let id = crate::jira::transitions::resolution_by(r).map(|(id, _)| id.to_string());
                std::iter::once(r.to_lowercase()).chain(id)
            })
            .collect(),
        Field::Parent => i
            .extra
            .parent_id
            .map(|p| vec![p.to_string()])
            .unwrap_or_default(),
        Field::Created
        | Field::Updated
        | Field::Resolved
        | Field::Number(_)
        | Field::Rank
        | Field::Property => {
            vec![]
        }
    }
}

/// The plain text of an ADF document (or a plain-text v2 description).
pub fn adf_text(v: &serde_json::Value) -> String {
    let mut out = String::new();
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => out.push_str(s),
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(t)) = o.get("text") {
                    if !out.is_empty() && !out.ends_with(' ') {
                        out.push(' ');
                    }
                    out.push_str(t);
                }
                if let Some(c) = o.get("content") {
                    walk(c, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

fn issue_ord(field: &Field, i: &Issue) -> Option<OrdVal> {
    match field {
        Field::Created => Some(OrdVal::Time(i.created)),
        Field::Updated => Some(OrdVal::Time(i.updated)),
        Field::Resolved => i.resolution_date.map(OrdVal::Time),
        Field::Number(id) => number_value(id, i).map(OrdVal::Num),
        Field::Priority => Some(OrdVal::Num(priority_weight(&i.priority))),
        Field::Key => split_key(&i.key).map(|(p, n)| OrdVal::Key(p, n)),
        _ => None,
    }
}

/// Jira's `~`: every word of the query appears in the text (a trailing `*`
/// is a prefix wildcard, which substring matching already covers).
fn text_contains(hay: &str, needle: &str) -> bool {
    needle
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| hay.contains(w))
}

fn atom_matches(
    field: &Field,
    a: &Atom,
    i: &Issue,
    strings: &[String],
    ord: &Option<OrdVal>,
) -> bool {
    if a.empty {
        return strings.is_empty() && ord.is_none();
    }
    match (field, &a.ord) {
        (Field::Created | Field::Updated | Field::Resolved | Field::Number(_), Some(o)) => {
            ord.as_ref() == Some(o)
        }
        _ => {
            let _ = i;
            a.set.iter().any(|s| strings.contains(s))
        }
    }
}

fn eval(e: &CExpr, i: &Issue) -> bool {
    match e {
        CExpr::And(a, b) => eval(a, i) && eval(b, i),
        CExpr::Or(a, b) => eval(a, i) || eval(b, i),
        CExpr::Not(a) => !eval(a, i),
        CExpr::History(h) => h.matches(i),
        CExpr::Pred {
            field,
            op,
            atoms,
            text,
        } => {
            let strings = issue_strings(field, i);
            let ord = issue_ord(field, i);
            let is_empty = match field {
                Field::Created | Field::Updated | Field::Resolved | Field::Number(_) => {
                    ord.is_none()
                }
                Field::Priority => i.priority.is_empty(),
                _ => strings.is_empty(),
            };
            let any = || {
                atoms
                    .iter()
                    .any(|a| atom_matches(field, a, i, &strings, &ord))
            };
            match op {
                Op::Eq | Op::In => any(),
                Op::Ne | Op::NotIn => !is_empty && !any(),
                Op::Is => is_empty,
                Op::IsNot => !is_empty,
                Op::Like => strings.iter().any(|s| text_contains(s, text)),
                Op::NotLike => !strings.iter().any(|s| text_contains(s, text)),
                Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                    let (Some(have), Some(want)) =
                        (ord.as_ref(), atoms.first().and_then(|a| a.ord.as_ref()))
                    else {
                        return false;
                    };
                    // Keys only compare within one project.
                    if let (OrdVal::Key(p1, _), OrdVal::Key(p2, _)) = (have, want) {
                        if p1 != p2 {
                            return false;
                        }
                    }
                    let Some(o) = have.partial_cmp(want) else {
                        return false;
                    };
                    match op {
                        Op::Gt => o == Ordering::Greater,
                        Op::Ge => o != Ordering::Less,
                        Op::Lt => o == Ordering::Less,
                        _ => o != Ordering::Greater,
                    }
                }
            }
        }
    }
}
