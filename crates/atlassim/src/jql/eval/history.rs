//! `WAS` and `CHANGED`: clauses over an issue's stored changelog.
//!
//! A field's history is the value it had at creation (the `from` of its
//! first change, or its current value if it never changed) followed by the
//! `to` of every change. `WAS v` holds when some stretch of that history had
//! `v` and overlaps the time predicates (`BY` = whoever set it; the creation
//! value counts as set by the reporter); `WAS NOT` / `WAS NOT IN` are its
//! negation. `CHANGED` holds when some change matches every predicate
//! (`FROM`, `TO`, `BY`, `AFTER`, `BEFORE`, `ON`, `DURING`). Supported
//! fields: status, assignee, reporter, priority, resolution.

use chrono::Duration;

use super::{date_function, parse_date, resolve_atom, start_of_day, Atom, EvalCtx, Field};
use crate::jql::ast::{HistoryClause, HistoryOp, HistoryPredicate, Operand};
use crate::jql::JqlError;
use crate::model::{Issue, Timestamp};

/// Lower-cased values a state may have; `None` = EMPTY.
type Values = Vec<Option<String>>;

#[derive(Debug, Clone)]
pub(super) struct CompiledHistory {
    field_id: &'static str,
    op: HistoryOp,
    values: Values,
    from: Option<Values>,
    to: Option<Values>,
    by: Option<Vec<String>>,
    /// Times strictly after / before which the event must lie (both bounds
    /// inclusive for `DURING` and `ON`, which set both).
    after: Option<Timestamp>,
    before: Option<Timestamp>,
    now: Timestamp,
}

fn values_of(atoms: Vec<Atom>) -> Values {
    atoms
        .into_iter()
        .flat_map(|a| {
            if a.empty {
                vec![None]
            } else {
                a.set.into_iter().map(Some).collect()
            }
        })
        .collect()
}

fn date_of(o: &Operand, pred: HistoryPredicate, now: Timestamp) -> Result<Timestamp, JqlError> {
    let bad = |v: &str| {
        JqlError::validation(format!(
            "Date value '{v}' for predicate '{}' is invalid. {}",
            pred.as_str().to_uppercase(),
            super::DATE_HELP
        ))
    };
    match o {
        Operand::Value(v) => parse_date(v, now).ok_or_else(|| bad(v)),
        Operand::Function(f, args) => match date_function(f, args, now) {
            Some(t) => t,
            None => Err(super::unknown_function(f)),
        },
        _ => Err(bad(&o.to_string())),
    }
}

pub(super) fn compile(h: &HistoryClause, ctx: &EvalCtx<'_>) -> Result<CompiledHistory, JqlError> {
    let lower = h.field.to_ascii_lowercase();
    let (field, field_id) = match lower.as_str() {
        "status" => (Field::Status, "status"),
        "assignee" => (Field::Assignee, "assignee"),
        "reporter" => (Field::Reporter, "reporter"),
        "priority" => (Field::Priority, "priority"),
        "resolution" => (Field::Resolution, "resolution"),
        _ => {
            // Known fields without history get the operator message; unknown ones Jira's usual one.
            super::resolve_field(&h.field, ctx.site)?;
            return Err(JqlError::validation(format!(
                "The operator '{}' is not supported by the '{}' field.",
                h.op.as_str(),
                h.field
            )));
        }
    };
    let resolve = |o: &Operand| -> Result<Values, JqlError> {
        let items: Vec<&Operand> = match o {
            Operand::List(items) => items.iter().collect(),
            o => vec![o],
        };
        let mut out = Vec::new();
        for o in items {
            out.extend(values_of(resolve_atom(&field, &h.field, o, ctx)?));
        }
        Ok(out)
    };
    let values = match &h.operand {
        Some(o) => resolve(o)?,
        None => Vec::new(),
    };
    let mut c = CompiledHistory {
        field_id,
        op: h.op,
        values,
        from: None,
        to: None,
        by: None,
        after: None,
        before: None,
        now: ctx.now,
    };
    for (pred, o) in &h.predicates {
        match pred {
            HistoryPredicate::From => c.from = Some(resolve(o)?),
            HistoryPredicate::To => c.to = Some(resolve(o)?),
            HistoryPredicate::By => {
                let items: Vec<&Operand> = match o {
                    Operand::List(items) => items.iter().collect(),
                    o => vec![o],
                };
                let mut ids = Vec::new();
                for o in items {
                    for a in resolve_atom(&Field::Assignee, "by", o, ctx)? {
                        ids.extend(a.set);
                    }
                }
                c.by = Some(ids);
            }
            HistoryPredicate::After => c.after = Some(date_of(o, *pred, ctx.now)?),
            HistoryPredicate::Before => c.before = Some(date_of(o, *pred, ctx.now)?),
            HistoryPredicate::On => {
                let day = start_of_day(date_of(o, *pred, ctx.now)?);
                c.after = Some(day - Duration::milliseconds(1));
                c.before = Some(day + Duration::days(1));
            }
            HistoryPredicate::During => {
                let Operand::List(items) = o else {
                    return Err(JqlError::validation("DURING takes two dates."));
                };
                let (Some(a), Some(b)) = (items.first(), items.get(1)) else {
                    return Err(JqlError::validation("DURING takes two dates."));
                };
                c.after = Some(date_of(a, *pred, ctx.now)? - Duration::milliseconds(1));
                c.before = Some(date_of(b, *pred, ctx.now)? + Duration::milliseconds(1));
            }
        }
    }
    Ok(c)
}

/// (id, name) of a value, lower-cased.
type State = Option<(String, String)>;

fn lower_pair(id: Option<&String>, name: Option<&String>) -> State {
    match (id, name) {
        (None, None) => None,
        (id, name) => {
            let id = id.or(name).map(|s| s.to_lowercase()).unwrap_or_default();
            let name = name
                .or(Some(&id))
                .map(|s| s.to_lowercase())
                .unwrap_or_default();
            Some((id, name))
        }
    }
}

fn state_in(state: &State, values: &Values) -> bool {
    values.iter().any(|v| match (v, state) {
        (None, None) => true,
        (Some(v), Some((id, name))) => v == id || v == name,
        _ => false,
    })
}

impl CompiledHistory {
    fn current(&self, i: &Issue) -> State {
        let s = |x: &str| Some(x.to_string());
        match self.field_id {
            "status" => lower_pair(s(&i.status.id).as_ref(), s(&i.status.name).as_ref()),
            "assignee" => i
                .assignee
                .as_ref()
                .map(|a| (a.to_lowercase(), a.to_lowercase())),
            "reporter" => Some((i.reporter.to_lowercase(), i.reporter.to_lowercase())),
            "priority" => Some((i.priority.to_lowercase(), i.priority.to_lowercase())),
            _ => i
                .resolution
                .as_ref()
                .map(|r| (r.to_lowercase(), r.to_lowercase())),
        }
    }

    /// (time, author, from, to) of every change of the field, oldest first.
    fn changes<'a>(&self, i: &'a Issue) -> Vec<(Timestamp, &'a str, State, State)> {
        i.changelog
            .iter()
            .flat_map(|h| {
                h.items
                    .iter()
                    .filter(|it| it.field_id == self.field_id)
                    .map(move |it| {
                        (
                            h.created,
                            h.author_account_id.as_str(),
                            lower_pair(it.from.as_ref(), it.from_string.as_ref()),
                            lower_pair(it.to.as_ref(), it.to_string.as_ref()),
                        )
                    })
            })
            .collect()
    }

    fn in_window(&self, start: Timestamp, end: Timestamp) -> bool {
        self.after.is_none_or(|a| end > a) && self.before.is_none_or(|b| start < b)
    }

    fn by_ok(&self, who: &str) -> bool {
        self.by
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id.eq_ignore_ascii_case(who)))
    }

    fn was(&self, i: &Issue) -> bool {
        let changes = self.changes(i);
        let initial = match changes.first() {
            Some((_, _, from, _)) => from.clone(),
            None => self.current(i),
        };
        // (start, set by, value) stretches.
        let mut stretches: Vec<(Timestamp, &str, State)> =
            vec![(i.created, i.reporter.as_str(), initial)];
        for (t, who, _, to) in changes {
            stretches.push((t, who, to));
        }
        (0..stretches.len()).any(|k| {
            let (start, who, value) = &stretches[k];
            let end = stretches.get(k + 1).map(|s| s.0).unwrap_or(self.now);
            state_in(value, &self.values)
                && self.in_window(*start, end.max(*start))
                && self.by_ok(who)
        })
    }

    fn changed(&self, i: &Issue) -> bool {
        self.changes(i).into_iter().any(|(t, who, from, to)| {
            self.from.as_ref().is_none_or(|v| state_in(&from, v))
                && self.to.as_ref().is_none_or(|v| state_in(&to, v))
                && self.by_ok(who)
                && self.after.is_none_or(|a| t > a)
                && self.before.is_none_or(|b| t < b)
        })
    }

    pub(super) fn matches(&self, i: &Issue) -> bool {
        match self.op {
            HistoryOp::Was | HistoryOp::WasIn => self.was(i),
            HistoryOp::WasNot | HistoryOp::WasNotIn => !self.was(i),
            HistoryOp::Changed => self.changed(i),
        }
    }
}
