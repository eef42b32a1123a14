//! The JQL subset Jira accepts in a dynamic webhook's `jqlFilter`
//! (`WebhookDetails.jqlFilter` in the platform spec): fields `issueKey`,
//! `project`, `issuetype`, `status`, `assignee`, `reporter`,
//! `issue.property`, `cf[id]`; operators `=`, `!=`, `IN`, `NOT IN`; `AND`/`OR`.

use super::ast::{Expr, Op, Query};

/// Every problem with `query` as a webhook filter, worded like Jira's
/// per-item registration errors ("The clause watchCount is unsupported").
pub fn subset_errors(query: &Query) -> Vec<String> {
    let mut errors = Vec::new();
    if !query.order_by.is_empty() {
        errors.push("The ORDER BY clause is unsupported".to_string());
    }
    if let Some(e) = &query.clause {
        walk(e, &mut errors);
    }
    errors
}

fn walk(e: &Expr, errors: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            walk(a, errors);
            walk(b, errors);
        }
        Expr::Not(_) => errors.push("The operator NOT is unsupported".to_string()),
        Expr::History(h) => errors.push(format!(
            "The operator {} is unsupported",
            h.op.as_str().to_uppercase()
        )),
        Expr::Clause(c) => {
            let f = c.field.to_ascii_lowercase();
            let field_ok = matches!(
                f.as_str(),
                "issuekey" | "project" | "issuetype" | "status" | "assignee" | "reporter"
            ) || f.starts_with("issue.property[")
                || (f.starts_with("cf[") && f.ends_with(']'));
            if !field_ok {
                errors.push(format!("The clause {} is unsupported", c.field));
            } else if !matches!(c.op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
                errors.push(format!(
                    "The operator {} is unsupported",
                    c.op.as_str().to_uppercase()
                ));
            }
        }
    }
}
