//! Typed Jira operations and the one reader of Jira's issue JSON.

pub mod ops;

pub use ops::{Board, Ctx, Issue, Project, Sprint, SprintRef};
