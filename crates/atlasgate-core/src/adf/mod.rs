//! Markdown ⇄ Atlassian Document Format (ADF): the one converter atlasgate
//! uses for typed writes, MCP tools and Confluence sync (`docs/design.md §16`).
//!
//! - [`markdown_to_adf`] parses CommonMark plus GFM tables and strikethrough
//!   (with `pulldown-cmark`) and returns an ADF `doc` (version 1) that obeys
//!   ADF's structural rules.
//! - [`adf_to_markdown`] renders an ADF document as Markdown. Nothing is
//!   dropped silently: a node outside the supported subset becomes a visible
//!   placeholder.
//!
//! Confluence needs no third format: the v2 pages API accepts
//! `representation: "atlas_doc_format"` with the ADF JSON, serialised to a
//! string, as the body value.
//!
//! # Supported subset (both directions)
//!
//! | Markdown | ADF |
//! |---|---|
//! | `#`…`######` heading | `heading` (`attrs.level` 1–6) |
//! | paragraph | `paragraph` |
//! | hard break (`\` at line end; `<br>` in headings and table cells) | `hardBreak` |
//! | `**strong**`, `_em_`, `~~strike~~` | `strong`, `em`, `strike` marks |
//! | `` `code` `` | `code` mark (combined with nothing but `link`) |
//! | fenced code block with info string | `codeBlock` (`attrs.language`) |
//! | `-` lists, `N.` lists (start number kept), nesting | `bulletList`, `orderedList` (`attrs.order`), `listItem` |
//! | `>` block quote | `blockquote` |
//! | `---` | `rule` |
//! | `[text](href "title")` | `link` mark (`attrs.href`, `attrs.title`) |
//! | GFM table (first row is the header) | `table` / `tableRow` / `tableHeader` / `tableCell`, each cell holding paragraphs |
//! | `@[Name](accountId)` | `mention` (`attrs.id` = accountId, `attrs.text` = `@Name`) |
//!
//! Text is escaped so that it comes back as the same text.
//!
//! # Placeholders
//!
//! A node [`adf_to_markdown`] cannot render appears as
//!
//! - inline: `[unsupported ADF node: TYPE]`, or
//!   `[unsupported ADF node: TYPE: DETAIL]` when the node carries text
//!   (its text content, or `attrs.text`, `shortName`, `alt`, `url`,
//!   `extensionKey`, or a `date` node's day as `YYYY-MM-DD`);
//! - block, without text: the same line as a paragraph of its own;
//! - block, with text content (panel, expand, layoutSection, …): a line
//!   `[unsupported ADF node: TYPE]`, then its content rendered as Markdown,
//!   then a line `[end of unsupported ADF node: TYPE]`.
//!
//! Marks outside the subset (underline, textColor, …) are not rendered; their
//! text is kept. See `docs/adf.md` for the known limits.

mod to_adf;
mod to_markdown;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use to_adf::markdown_to_adf;
pub use to_markdown::adf_to_markdown;

/// The prefix of every placeholder for a node outside the supported subset.
pub const PLACEHOLDER_PREFIX: &str = "[unsupported ADF node: ";

/// The `type` of an ADF node, `""` when it has none.
fn node_type(node: &serde_json::Value) -> &str {
    node.get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// An array field of an ADF node (`content`, `marks`), empty when absent.
fn array<'a>(node: &'a serde_json::Value, field: &str) -> &'a [serde_json::Value] {
    node.get(field)
        .and_then(serde_json::Value::as_array)
        .map_or(&[], Vec::as_slice)
}
