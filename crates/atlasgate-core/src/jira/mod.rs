//! Typed Jira operations and the one reader of Jira's issue JSON.

pub mod ops;
pub mod writes;

pub use ops::{Board, Ctx, Issue, Project, Sprint, SprintRef};
