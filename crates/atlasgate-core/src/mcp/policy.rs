//! A connection's MCP policy (`PUT /v1/connections/{id}/mcp-policy`):
//! read-only or not, and which tools exist at all. A refused tool is absent
//! from `tools/list`, and a call to it is refused before anything is sent.

use serde::{Deserialize, Serialize};

use super::{access, Access};
use crate::ids::ConnectionId;
use crate::store::mcp::{self as rows, PolicyRow};
use crate::store::Store;
use crate::{Error, Result};

/// The default (no row stored): every tool, writes allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Refuse every tool that writes.
    pub read_only: bool,
    /// The tools allowed, by name; `None` = every tool.
    pub tools: Option<Vec<String>>,
}

/// Why a tool call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownTool,
    /// The tool writes and the connection is read-only.
    ReadOnly,
    /// The tool is not in the policy's list.
    NotListed,
}

impl Policy {
    /// Whether the policy lets `tool` be listed and called.
    pub fn check(&self, tool: &str) -> std::result::Result<(), Refusal> {
        let Some(access) = access(tool) else {
            return Err(Refusal::UnknownTool);
        };
        if self.read_only && access == Access::Write {
            return Err(Refusal::ReadOnly);
        }
        if let Some(list) = &self.tools {
            if !list.iter().any(|t| t == tool) {
                return Err(Refusal::NotListed);
            }
        }
        Ok(())
    }

    /// Bad input (an unknown tool name) is refused before anything is stored.
    fn validate(&self) -> Result<()> {
        for (i, name) in self.tools.iter().flatten().enumerate() {
            if access(name).is_none() {
                let known: Vec<&str> = super::TOOLS.iter().map(|(n, _)| *n).collect();
                return Err(Error::invalid(
                    format!("tools[{i}]"),
                    format!("`{name}` is not a tool; the tools are {}", known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// The connection's policy (the default when none was stored).
pub async fn get(store: &Store, connection_id: &ConnectionId) -> Result<Policy> {
    let Some(row) = rows::get_policy(store.pool(), connection_id).await? else {
        return Ok(Policy::default());
    };
    Ok(Policy {
        read_only: row.read_only,
        tools: row.tools,
    })
}

/// Validate and store the connection's policy; answers what is now stored.
/// The caller has checked that the connection belongs to the app.
pub async fn put(store: &Store, connection_id: &ConnectionId, policy: Policy) -> Result<Policy> {
    policy.validate()?;
    let mut policy = policy;
    if let Some(list) = &mut policy.tools {
        list.sort_by_key(|name| super::TOOLS.iter().position(|(n, _)| n == name));
        list.dedup();
    }
    rows::put_policy(
        store.pool(),
        &PolicyRow {
            connection_id: connection_id.clone(),
            read_only: policy.read_only,
            tools: policy.tools.clone(),
            updated_at: crate::store::now(),
        },
    )
    .await?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_refuses_exactly_the_write_tools() {
        let p = Policy {
            read_only: true,
            tools: None,
        };
        for (name, access) in super::super::TOOLS {
            let want = match access {
                Access::Read => Ok(()),
                Access::Write => Err(Refusal::ReadOnly),
            };
            assert_eq!(p.check(name), want, "{name}");
        }
        assert_eq!(Policy::default().check("nope"), Err(Refusal::UnknownTool));
    }

    #[test]
    fn a_list_allows_only_its_tools() {
        let p = Policy {
            read_only: false,
            tools: Some(vec!["jira_search".into(), "jira_create_issue".into()]),
        };
        assert_eq!(p.check("jira_search"), Ok(()));
        assert_eq!(p.check("jira_create_issue"), Ok(()));
        assert_eq!(p.check("jira_get_issue"), Err(Refusal::NotListed));
        let bad = Policy {
            read_only: false,
            tools: Some(vec!["jira_search".into(), "jira_delete_everything".into()]),
        };
        match bad.validate() {
            Err(Error::Invalid { field, message }) => {
                assert_eq!(field, "tools[1]");
                assert!(message.contains("jira_delete_everything"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
