//! JQL: the subset real integrations use, parsed for real and evaluated over
//! the simulated issues, with Jira's error messages for everything else.

mod ast;
mod eval;
mod lexer;
pub mod webhook;

pub use ast::{
    parse, Clause, Direction, Expr, HistoryClause, HistoryOp, HistoryPredicate, Op, Operand,
    OrderItem, Query,
};
pub use eval::{adf_text, sort_issues, sort_prefix, Compiled, EvalCtx, OrderField};

/// A JQL problem, worded as Jira words it. Parse errors carry Jira's
/// "Error in the JQL Query: " prefix; validation errors do not (as in Jira).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .messages.join(" "))]
pub struct JqlError {
    pub messages: Vec<String>,
}

impl JqlError {
    pub fn parse(msg: impl Into<String>) -> Self {
        JqlError {
            messages: vec![format!("Error in the JQL Query: {}", msg.into())],
        }
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        JqlError {
            messages: vec![msg.into()],
        }
    }

    pub(crate) fn with_suffix(mut self, suffix: &str) -> Self {
        if let Some(last) = self.messages.last_mut() {
            // Jira puts the operator hint between the message and the position.
            match last.rfind(" (line 1, character") {
                Some(i) => last.insert_str(i, &format!(" {suffix}")),
                None => {
                    last.push(' ');
                    last.push_str(suffix);
                }
            }
        }
        self
    }
}

/// Jira's message for a query without any restriction on `/search/jql`.
pub const UNBOUNDED_MESSAGE: &str =
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.";

#[cfg(test)]
mod tests;
