use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

// ------------------------------------------------------------ validity

/// ADF's structural rules for the nodes the converter emits: a failure names
/// the first broken rule and where.
fn validate(doc: &Value) -> Result<(), String> {
    if doc["type"] != "doc" || doc["version"] != 1 {
        return Err(format!("not a version-1 doc: {doc}"));
    }
    let doc_blocks = [
        "paragraph",
        "heading",
        "codeBlock",
        "bulletList",
        "orderedList",
        "blockquote",
        "rule",
        "table",
    ];
    blocks(doc, &doc_blocks, "doc")
}

fn children<'a>(node: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    node["content"]
        .as_array()
        .ok_or_else(|| format!("{path}: no content array"))
}

fn blocks(node: &Value, allowed: &[&str], path: &str) -> Result<(), String> {
    for (i, child) in children(node, path)?.iter().enumerate() {
        let t = child["type"].as_str().unwrap_or("");
        let here = format!("{path}/{i}:{t}");
        if !allowed.contains(&t) {
            return Err(format!("{here}: not allowed here"));
        }
        block(child, &here)?;
    }
    Ok(())
}

fn block(node: &Value, path: &str) -> Result<(), String> {
    if node.get("marks").is_some() {
        return Err(format!("{path}: marks on a non-text node"));
    }
    let nested = ["paragraph", "bulletList", "orderedList", "codeBlock"];
    match node["type"].as_str().unwrap_or("") {
        "paragraph" => inline(node, path),
        "heading" => {
            let level = node["attrs"]["level"].as_u64().unwrap_or(0);
            if !(1..=6).contains(&level) {
                return Err(format!("{path}: level {level}"));
            }
            inline(node, path)
        }
        "codeBlock" => {
            for t in children(node, path)? {
                if t["type"] != "text" || t.get("marks").is_some() || t["text"] == "" {
                    return Err(format!("{path}: code block holds {t}"));
                }
            }
            match node.get("attrs") {
                None => Ok(()),
                Some(a) if a["language"].is_string() => Ok(()),
                Some(a) => Err(format!("{path}: attrs {a}")),
            }
        }
        "bulletList" | "orderedList" => {
            if node["type"] == "orderedList" && node["attrs"]["order"].as_u64().is_none() {
                return Err(format!("{path}: order missing"));
            }
            let items = children(node, path)?;
            if items.is_empty() {
                return Err(format!("{path}: empty list"));
            }
            blocks(node, &["listItem"], path)
        }
        "listItem" => {
            let content = children(node, path)?;
            if content.first().map(|c| &c["type"]) != Some(&json!("paragraph")) {
                return Err(format!("{path}: does not start with a paragraph"));
            }
            blocks(node, &nested, path)
        }
        "blockquote" => {
            if children(node, path)?.is_empty() {
                return Err(format!("{path}: empty quote"));
            }
            blocks(node, &nested, path)
        }
        "rule" => Ok(()),
        "table" => {
            let rows = children(node, path)?;
            let width = rows
                .first()
                .map(|r| r["content"].as_array().map_or(0, Vec::len));
            for row in rows {
                if row["content"].as_array().map(Vec::len) != width || width == Some(0) {
                    return Err(format!("{path}: ragged or empty row"));
                }
            }
            blocks(node, &["tableRow"], path)
        }
        "tableRow" => blocks(node, &["tableHeader", "tableCell"], path),
        "tableHeader" | "tableCell" => {
            if children(node, path)?.is_empty() {
                return Err(format!("{path}: empty cell"));
            }
            let cell_blocks = [
                "paragraph",
                "heading",
                "bulletList",
                "orderedList",
                "codeBlock",
                "blockquote",
                "rule",
            ];
            blocks(node, &cell_blocks, path)
        }
        other => Err(format!("{path}: unexpected block {other}")),
    }
}

fn inline(node: &Value, path: &str) -> Result<(), String> {
    for (i, child) in children(node, path)?.iter().enumerate() {
        let here = format!("{path}/{i}");
        match child["type"].as_str().unwrap_or("") {
            "text" => {
                if child["text"].as_str().is_none_or(str::is_empty) {
                    return Err(format!("{here}: empty text"));
                }
                let marks: Vec<&str> = child["marks"]
                    .as_array()
                    .map(|m| m.iter().filter_map(|m| m["type"].as_str()).collect())
                    .unwrap_or_default();
                if child.get("marks").is_some() && marks.is_empty() {
                    return Err(format!("{here}: empty marks array"));
                }
                let mut seen = marks.clone();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != marks.len() {
                    return Err(format!("{here}: repeated mark"));
                }
                for m in &marks {
                    if !["strong", "em", "strike", "code", "link"].contains(m) {
                        return Err(format!("{here}: mark {m}"));
                    }
                }
                if marks.contains(&"code") && marks.iter().any(|m| !["code", "link"].contains(m)) {
                    return Err(format!("{here}: code combined with {marks:?}"));
                }
                for m in child["marks"].as_array().into_iter().flatten() {
                    if m["type"] == "link" && !m["attrs"]["href"].is_string() {
                        return Err(format!("{here}: link without href"));
                    }
                }
            }
            "hardBreak" => {}
            "mention" => {
                if child["attrs"]["id"].as_str().is_none() {
                    return Err(format!("{here}: mention without id"));
                }
                if let Some(text) = child["attrs"].get("text") {
                    if !text.as_str().is_some_and(|t| t.starts_with('@')) {
                        return Err(format!("{here}: mention text {text}"));
                    }
                }
            }
            other => return Err(format!("{here}: unexpected inline {other}")),
        }
        if child["type"] != "text" && child.get("marks").is_some() {
            return Err(format!("{here}: marks on a non-text node"));
        }
    }
    Ok(())
}

// ------------------------------------------------------- example tests

fn doc(content: Value) -> Value {
    json!({"type": "doc", "version": 1, "content": content})
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn marked(t: &str, marks: Value) -> Value {
    json!({"type": "text", "text": t, "marks": marks})
}

fn para(inline: Value) -> Value {
    json!({"type": "paragraph", "content": inline})
}

/// Checks both directions for a document in the supported subset.
fn assert_both_ways(md: &str, adf: Value) {
    assert_eq!(markdown_to_adf(md), adf, "Markdown → ADF of {md:?}");
    assert_eq!(adf_to_markdown(&adf), md, "ADF → Markdown of {adf}");
    validate(&adf).unwrap();
}

#[test]
fn headings_of_every_level() {
    for level in 1..=6 {
        let md = format!("{} Title {level}\n", "#".repeat(level));
        let adf = doc(json!([{
            "type": "heading",
            "attrs": {"level": level},
            "content": [text(&format!("Title {level}"))],
        }]));
        assert_both_ways(&md, adf);
    }
}

#[test]
fn paragraphs_and_hard_breaks() {
    assert_both_ways(
        "first line\\\nsecond line\n\nnext paragraph\n",
        doc(json!([
            para(json!([text("first line"), {"type": "hardBreak"}, text("second line")])),
            para(json!([text("next paragraph")])),
        ])),
    );
}

#[test]
fn strong_em_strike_and_inline_code() {
    assert_both_ways(
        "**bold** _it_ ~~gone~~ `x = 1`\n",
        doc(json!([para(json!([
            marked("bold", json!([{"type": "strong"}])),
            text(" "),
            marked("it", json!([{"type": "em"}])),
            text(" "),
            marked("gone", json!([{"type": "strike"}])),
            text(" "),
            marked("x = 1", json!([{"type": "code"}])),
        ]))])),
    );
}

#[test]
fn nested_marks_share_one_text_node() {
    assert_both_ways(
        "**_both_**\n",
        doc(json!([para(json!([marked(
            "both",
            json!([{"type": "strong"}, {"type": "em"}])
        )]))])),
    );
}

#[test]
fn code_mark_drops_other_marks_but_keeps_link() {
    let adf = markdown_to_adf("**`x`** [`y`](https://e.org)");
    assert_eq!(
        adf["content"][0]["content"],
        json!([
            marked("x", json!([{"type": "code"}])),
            text(" "),
            marked(
                "y",
                json!([{"type": "code"}, {"type": "link", "attrs": {"href": "https://e.org"}}])
            ),
        ])
    );
    assert_eq!(adf_to_markdown(&adf), "`x` [`y`](https://e.org)\n");
}

#[test]
fn code_block_with_language() {
    assert_both_ways(
        "```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n",
        doc(json!([{
            "type": "codeBlock",
            "attrs": {"language": "rust"},
            "content": [text("fn main() {\n    println!(\"hi\");\n}")],
        }])),
    );
}

#[test]
fn code_block_containing_a_fence_gets_a_longer_fence() {
    let adf = doc(json!([{"type": "codeBlock", "content": [text("```\nx\n```")]}]));
    let md = adf_to_markdown(&adf);
    assert_eq!(md, "````\n```\nx\n```\n````\n");
    assert_eq!(markdown_to_adf(&md), adf);
}

#[test]
fn ordered_list_keeps_its_start_and_nests() {
    assert_both_ways(
        "3. three\n4. four\n   - nested\n",
        doc(json!([{
            "type": "orderedList",
            "attrs": {"order": 3},
            "content": [
                {"type": "listItem", "content": [para(json!([text("three")]))]},
                {"type": "listItem", "content": [
                    para(json!([text("four")])),
                    {"type": "bulletList", "content": [
                        {"type": "listItem", "content": [para(json!([text("nested")]))]},
                    ]},
                ]},
            ],
        }])),
    );
}

#[test]
fn adjacent_lists_stay_apart() {
    let item = |t: &str| json!({"type": "listItem", "content": [para(json!([text(t)]))]});
    let adf = doc(json!([
        {"type": "bulletList", "content": [item("a")]},
        {"type": "bulletList", "content": [item("b")]},
    ]));
    assert_both_ways("- a\n\n* b\n", adf);
}

#[test]
fn blockquote_and_rule() {
    assert_both_ways(
        "> quoted\n>\n> - item\n\n---\n",
        doc(json!([
            {"type": "blockquote", "content": [
                para(json!([text("quoted")])),
                {"type": "bulletList", "content": [
                    {"type": "listItem", "content": [para(json!([text("item")]))]},
                ]},
            ]},
            {"type": "rule"},
        ])),
    );
}

#[test]
fn links_with_and_without_title() {
    assert_both_ways(
        "[site](https://example.com/a?b=1&c=2) and [t](https://x.org \"The title\")\n",
        doc(json!([para(json!([
            marked(
                "site",
                json!([{"type": "link", "attrs": {"href": "https://example.com/a?b=1&c=2"}}])
            ),
            text(" and "),
            marked(
                "t",
                json!([{"type": "link", "attrs": {"href": "https://x.org", "title": "The title"}}])
            ),
        ]))])),
    );
}

#[test]
fn mentions_round_trip() {
    assert_both_ways(
        "ping @[Ada Lovelace](557058:f58131cb-b67d-43c7-b30d-6b58d40bd077) please\n",
        doc(json!([para(json!([
            text("ping "),
            {"type": "mention", "attrs": {
                "id": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
                "text": "@Ada Lovelace",
            }},
            text(" please"),
        ]))])),
    );
}

#[test]
fn an_escaped_at_sign_makes_a_plain_link() {
    let adf = markdown_to_adf("mail \\@[x](https://e.org)");
    assert_eq!(
        adf["content"][0]["content"],
        json!([
            text("mail @"),
            marked(
                "x",
                json!([{"type": "link", "attrs": {"href": "https://e.org"}}])
            ),
        ])
    );
    assert_eq!(adf_to_markdown(&adf), "mail \\@[x](https://e.org)\n");
}

#[test]
fn mention_from_jira_with_extra_attrs_renders_as_mention_syntax() {
    let adf = doc(json!([para(json!([{
        "type": "mention",
        "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5", "text": "@Bradley Ayers", "accessLevel": "", "userType": "APP"},
    }]))]));
    assert_eq!(
        adf_to_markdown(&adf),
        "@[Bradley Ayers](5b10ac8d82e05b22cc7d4ef5)\n"
    );
}

#[test]
fn table_with_inline_marks() {
    let cell = |t: &str, content: Value| json!({"type": t, "content": [para(content)]});
    let adf = doc(json!([{"type": "table", "content": [
        {"type": "tableRow", "content": [
            cell("tableHeader", json!([marked("Key", json!([{"type": "strong"}]))])),
            cell("tableHeader", json!([text("Summary")])),
        ]},
        {"type": "tableRow", "content": [
            cell("tableCell", json!([marked("AG-1", json!([{"type": "link", "attrs": {"href": "https://x.atlassian.net/browse/AG-1"}}]))])),
            cell("tableCell", json!([
                marked("a|b", json!([{"type": "code"}])),
                text(" and "),
                marked("done", json!([{"type": "em"}, {"type": "strike"}])),
                {"type": "hardBreak"},
                text("x | y"),
            ])),
        ]},
        {"type": "tableRow", "content": [
            cell("tableCell", json!([{"type": "mention", "attrs": {"id": "abc", "text": "@Bob"}}])),
            cell("tableCell", json!([])),
        ]},
    ]}]));
    assert_both_ways(
        "| **Key** | Summary |\n| --- | --- |\n\
         | [AG-1](https://x.atlassian.net/browse/AG-1) | `a\\|b` and _~~done~~_<br>x \\| y |\n\
         | @[Bob](abc) |  |\n",
        adf,
    );
}

#[test]
fn text_with_markdown_characters_round_trips() {
    let s = "1. not a list * [x] <b> a_b _c_ ~d~ `e` \\ # & &amp; | @ ! 2 < 3 > 1";
    let adf = doc(json!([para(json!([text(s)]))]));
    let md = adf_to_markdown(&adf);
    assert_eq!(markdown_to_adf(&md), adf, "{md}");
    let heading =
        doc(json!([{"type": "heading", "attrs": {"level": 2}, "content": [text("C# ##")]}]));
    assert_eq!(markdown_to_adf(&adf_to_markdown(&heading)), heading);
}

#[test]
fn snake_case_stays_readable() {
    let adf = doc(json!([para(json!([text("call some_function_name now")]))]));
    assert_eq!(adf_to_markdown(&adf), "call some_function_name now\n");
}

#[test]
fn emphasis_next_to_letters_and_punctuation() {
    // `a**(b)**c` is not emphasis in CommonMark; the converter must still
    // produce Markdown that reads back as bold "(b)" between "a" and "c".
    let adf = doc(json!([para(json!([
        text("a"),
        marked("(b)", json!([{"type": "strong"}])),
        text("c"),
        marked("d", json!([{"type": "em"}])),
        text("e"),
    ]))]));
    let md = adf_to_markdown(&adf);
    assert_eq!(markdown_to_adf(&md), adf, "{md}");
}

#[test]
fn whitespace_at_line_edges_survives() {
    let adf = doc(json!([para(
        json!([text("  indented"), {"type": "hardBreak"}, text(" x ")])
    )]));
    let md = adf_to_markdown(&adf);
    assert_eq!(markdown_to_adf(&md), adf, "{md}");
}

#[test]
fn markdown_outside_adf_rules_becomes_valid_adf() {
    let md = "- # heading in item\n- > quote in item\n  > ---\n\n> > nested\n> # h\n\n- ```\n  code first\n  ```\n\n![logo](https://e.org/l.png)\n\n<div>\nhtml\n</div>\n\n-\n";
    let adf = markdown_to_adf(md);
    validate(&adf).unwrap();
    let md1 = adf_to_markdown(&adf);
    for word in [
        "heading in item",
        "quote in item",
        "nested",
        "code first",
        "logo",
        "<div>",
        "html",
    ] {
        assert!(md1.contains(word), "{word} lost from {md1}");
    }
    assert_eq!(
        adf["content"][0]["content"][0]["content"][0]["content"][0]["marks"],
        json!([{"type": "strong"}])
    );
}

#[test]
fn unknown_nodes_become_placeholders() {
    let adf = doc(json!([
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [para(json!([text("Heads up")]))]},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "f1", "type": "file", "collection": "c"}}]},
        {"type": "expand", "attrs": {"title": "More"}, "content": [para(json!([text("hidden text")]))]},
        para(json!([
            text("state "),
            {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
            text(" "),
            {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}},
            text(" due "),
            {"type": "date", "attrs": {"timestamp": "1582152559000"}},
            text(" see "),
            {"type": "inlineCard", "attrs": {"url": "https://x.atlassian.net/browse/AG-1"}},
            {"type": "somethingNew"},
            text("(after)"),
        ])),
        {"type": "blockCard", "attrs": {"url": "https://e.org"}},
        {"type": "futureBlock"},
    ]));
    let md = adf_to_markdown(&adf);
    assert_eq!(
        md,
        "[unsupported ADF node: panel]\n\nHeads up\n\n[end of unsupported ADF node: panel]\n\n\
         [unsupported ADF node: mediaSingle]\n\n\
         [unsupported ADF node: expand: More]\n\nhidden text\n\n[end of unsupported ADF node: expand]\n\n\
         state [unsupported ADF node: status: IN PROGRESS] [unsupported ADF node: emoji: 😄] \
         due [unsupported ADF node: date: 2020-02-19] see \
         [unsupported ADF node: inlineCard: https://x.atlassian.net/browse/AG-1]\
         [unsupported ADF node: somethingNew]\\(after)\n\n\
         [unsupported ADF node: blockCard: https://e.org]\n\n\
         [unsupported ADF node: futureBlock]\n"
    );
    // Written back, a placeholder is plain text: still visible, never a link.
    let back = markdown_to_adf(&md);
    validate(&back).unwrap();
    let para_text: String = back["content"][7]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(
        para_text.ends_with("[unsupported ADF node: somethingNew](after)"),
        "{para_text}"
    );
}

/// ADF as Jira's editor writes it: attributes the subset does not use,
/// marks in another order, localIds, spacing paragraphs.
#[test]
fn jira_editor_adf_renders_cleanly() {
    let adf = json!({"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2, "localId": "h1"}, "content": [text("Steps")]},
        {"type": "orderedList", "attrs": {"order": 1, "localId": "l1"}, "content": [
            {"type": "listItem", "attrs": {"localId": "i1"}, "content": [
                para(json!([
                    text("Open "),
                    marked("settings", json!([{"type": "link", "attrs": {"href": "https://e.org/s"}}, {"type": "strong"}])),
                    text(" as "),
                    {"type": "mention", "attrs": {"id": "712020:abc", "text": "@Jo Ng", "accessLevel": "", "localId": "m1"}},
                ])),
            ]},
        ]},
        para(json!([])),
        {"type": "codeBlock", "attrs": {"language": "java"}, "content": [text("x();")]},
        {"type": "table", "attrs": {"isNumberColumnEnabled": false, "layout": "default", "localId": "t1"}, "content": [
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "attrs": {"colspan": 1, "rowspan": 1}, "content": [para(json!([
                    marked("Env", json!([{"type": "textColor", "attrs": {"color": "#ff5630"}}])),
                ]))]},
            ]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "attrs": {"background": "#fff"}, "content": [para(json!([
                    {"type": "emoji", "attrs": {"shortName": ":check_mark:", "id": "2714", "text": "✔️"}},
                    text(" prod"),
                ]))]},
            ]},
        ]},
    ]});
    assert_eq!(
        adf_to_markdown(&adf),
        "## Steps\n\n\
         1. Open [**settings**](https://e.org/s) as @[Jo Ng](712020:abc)\n\n\
         ```java\nx();\n```\n\n\
         | Env |\n| --- |\n| [unsupported ADF node: emoji: ✔️] prod |\n"
    );
    validate(&markdown_to_adf(&adf_to_markdown(&adf))).unwrap();
}

#[test]
fn unknown_marks_keep_their_text() {
    let adf = doc(json!([para(json!([marked(
        "under",
        json!([{"type": "underline"}, {"type": "strong"}])
    )]))]));
    assert_eq!(adf_to_markdown(&adf), "**under**\n");
}

#[test]
fn non_doc_input_still_renders() {
    assert_eq!(adf_to_markdown(&json!(null)), "");
    assert_eq!(adf_to_markdown(&para(json!([text("x")]))), "x\n");
}

#[test]
fn a_nul_character_is_read_as_the_replacement_character() {
    let adf = markdown_to_adf("a\0b");
    assert_eq!(adf, doc(json!([para(json!([text("a\u{FFFD}b")]))])));
}

#[test]
fn a_carriage_return_in_text_survives_and_crlf_is_a_line_break() {
    let adf = doc(json!([para(json!([text("a\rb")]))]));
    let md = adf_to_markdown(&adf);
    assert_eq!(md, "a&#13;b\n");
    assert_eq!(markdown_to_adf(&md), adf);
    let crlf = doc(json!([para(json!([text("a\r\nb")]))]));
    assert_eq!(adf_to_markdown(&crlf), "a\\\nb\n");
}

#[test]
fn a_form_feed_in_text_survives_even_where_a_heading_starts() {
    let adf = doc(json!([{
        "type": "heading",
        "attrs": {"level": 2},
        "content": [text("\u{c}x")],
    }]));
    let md = adf_to_markdown(&adf);
    assert_eq!(md, "## &#12;x\n");
    assert_eq!(markdown_to_adf(&md), adf);
}

#[test]
fn a_line_break_in_a_link_title_survives() {
    let adf = doc(json!([{
        "type": "paragraph",
        "content": [{
            "type": "text",
            "text": "o",
            "marks": [{"type": "link", "attrs": {"href": "o", "title": "a\nb\rc"}}],
        }],
    }]));
    let md = adf_to_markdown(&adf);
    assert_eq!(md, "[o](o \"a&#10;b&#13;c\")\n");
    assert_eq!(markdown_to_adf(&md), adf);
}

#[test]
fn a_line_ending_inside_inline_html_is_a_soft_break() {
    assert_eq!(
        markdown_to_adf("<y\ny> and <a\r\nb>"),
        doc(json!([{ "type": "paragraph", "content": [text("<y y> and <a b>")] }]))
    );
}

#[test]
fn empty_markdown_is_an_empty_doc() {
    assert_eq!(markdown_to_adf(""), doc(json!([])));
    assert_eq!(adf_to_markdown(&doc(json!([]))), "");
}

fn depth(node: &Value) -> usize {
    1 + node["content"]
        .as_array()
        .map_or(0, |c| c.iter().map(depth).max().unwrap_or(0))
}

#[test]
fn deep_nesting_is_capped_and_keeps_the_text() {
    let levels = 300;
    let lists: String = (0..levels)
        .map(|i| format!("{}- item{i}\n", "  ".repeat(i)))
        .collect();
    let one_line = format!("{}deepest", "- ".repeat(levels));
    let quotes = format!("{}quoted", "> ".repeat(levels));
    for md in [lists, one_line, quotes] {
        let adf = markdown_to_adf(&md);
        validate(&adf).unwrap();
        // doc + 16 × (list + item) + paragraph + text
        assert!(
            depth(&adf) <= 2 * to_adf::MAX_NESTING + 3,
            "depth {}",
            depth(&adf)
        );
        let md1 = adf_to_markdown(&adf);
        for word in ["item0", "item299", "deepest", "quoted"] {
            assert_eq!(md.contains(word), md1.contains(word), "{word}");
        }
        check_stable(&md).unwrap();
    }
}

/// Inputs the property tests once shrank to, kept as examples so that they
/// run on every build whatever the random seed.
#[test]
fn cases_found_by_the_property_tests() {
    for md0 in [
        // An empty nested item must not follow a paragraph without a blank
        // line (it would become a setext underline).
        "<\n\n- ```a```\n\n  - ",
        // Nested empty items would write `- - -`, a rule.
        "- - *\n",
        // An ordered list starting at 10 cannot interrupt a paragraph.
        "0. a\n\n   10. a\n\n       a",
        // Encoding one letter for `_` breaks the `**` before it.
        "- 0. a**A*a***",
        // Emphasis between a letter and Unicode punctuation.
        "~~é**—**~~ and # ~~😀~~**é****a**",
        // Entities and escapes in a code block's info string.
        "~~~~@[\\*](a)~~\\&amp\\;~~\n   \n   a\n~~~~",
        // A table inside a quote, with empty cells.
        "> |  |\n> | --- |\n> |  |",
        // A link whose text is only a hard break.
        "0. - **[\\\n     ](<https://e.org/>)**",
        // An empty heading inside a list item.
        "0. `` * ``\n   \n   #  ",
        // Found by `fuzz/fuzz_targets/adf.rs`: a NUL is U+FFFD (CommonMark
        // §2.3), also where pulldown-cmark keeps it in the text.
        "- 0. a*A*\0a***",
        // A CR inside inline HTML stays text, and must come back as text.
        "(  ](<https\rg/>)*p",
        // A form feed that ends up at a heading's start is text, not
        // whitespace to strip (`fuzz/fuzz_targets/adf.rs`, its fourth find).
        "- \r \u{c}*\n- \r \r*\n- \r \r*\n\r*\n",
        // A line break in a link's title is kept, not made a space
        // (`fuzz/fuzz_targets/adf.rs`, its fifth find).
        "[](o \"\n\")",
        // Inline HTML across a line ending: the line ending is a soft
        // break, a space (`fuzz/fuzz_targets/adf.rs`, its sixth find).
        "<y\ny>",
        "<y\r\ny>",
    ] {
        check_stable(md0).unwrap();
    }
}

// ---------------------------------------------------------- generators

#[derive(Debug, Clone)]
enum Inl {
    Text(String),
    Strong(Vec<Inl>),
    Em(Vec<Inl>),
    Strike(Vec<Inl>),
    Code(String),
    Link(String, String, Vec<Inl>),
    Mention(String, String),
    Break,
}

#[derive(Debug, Clone)]
enum Blk {
    Para(Vec<Inl>),
    Heading(u8, Vec<Inl>),
    Code(Option<String>, String),
    Bullet(Vec<Vec<Blk>>),
    Ordered(u64, Vec<Vec<Blk>>),
    Quote(Vec<Blk>),
    Rule,
    Table(Vec<Vec<Vec<Inl>>>),
}

const WORD: &str = "[a-zA-Z0-9 \t*_\\\\\\[\\]`#<>&|~@!().:;+=\"'é😀—\u{a0}-]{1,6}";

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{1,6}",
        2 => WORD,
        1 => Just("&amp;".to_string()),
        1 => Just("1. ".to_string()),
    ]
}

fn leaf() -> impl Strategy<Value = Inl> {
    prop_oneof![
        6 => word().prop_map(Inl::Text),
        1 => Just(Inl::Text(" ".to_string())),
        1 => "[a-z `|*\\\\ ]{1,6}".prop_map(Inl::Code),
        1 => ("[A-Za-z é*_\\[\\]]{1,6}", "[A-Za-z0-9:-]{1,12}").prop_map(|(n, i)| Inl::Mention(n, i)),
        1 => Just(Inl::Break),
    ]
}

fn href() -> impl Strategy<Value = String> {
    "https://e\\.org/[a-z()&;<> _|\\\\]{0,6}"
}

fn inlines() -> impl Strategy<Value = Vec<Inl>> {
    let nested = leaf().prop_recursive(2, 12, 3, |inner| {
        let seq = prop::collection::vec(inner, 1..4);
        prop_oneof![
            seq.clone().prop_map(Inl::Strong),
            seq.clone().prop_map(Inl::Em),
            seq.clone().prop_map(Inl::Strike),
            (
                href(),
                prop_oneof![Just(String::new()), "[a-z \"\\\\]{1,5}"],
                seq
            )
                .prop_map(|(h, t, c)| Inl::Link(h, t, c)),
        ]
    });
    prop::collection::vec(nested, 1..5)
}

/// Blocks; `strict` keeps to what ADF allows where (for ADF → Markdown →
/// ADF), otherwise anything goes anywhere (for Markdown stability).
fn blocks_strategy(strict: bool) -> impl Strategy<Value = Vec<Blk>> {
    let leaf_block = prop_oneof![
        4 => inlines().prop_map(Blk::Para),
        1 => (1u8..=6, inlines()).prop_map(|(l, c)| Blk::Heading(l, c)),
        1 => (
            prop::option::of(prop_oneof![Just("rust".to_string()), Just("c++".to_string()), Just("objective-c".to_string())]),
            "[a-z `~\t \n{}]{0,20}"
        ).prop_map(|(l, c)| Blk::Code(l, c)),
        1 => Just(Blk::Rule),
        1 => (1usize..4).prop_flat_map(|cols| {
            prop::collection::vec(prop::collection::vec(prop_oneof![Just(Vec::new()), inlines()], cols), 1..4)
        }).prop_map(Blk::Table),
    ];
    let block = leaf_block.prop_recursive(3, 24, 4, move |inner| {
        let nested_ok = move |b: &Blk| {
            !strict
                || matches!(
                    b,
                    Blk::Para(_) | Blk::Bullet(_) | Blk::Ordered(..) | Blk::Code(..)
                )
        };
        let contents = prop::collection::vec(inner, 1..3)
            .prop_map(move |bs| bs.into_iter().filter(|b| nested_ok(b)).collect::<Vec<_>>())
            .boxed();
        let item =
            (inlines(), contents.clone(), any::<bool>()).prop_map(move |(first, rest, lead)| {
                let mut blocks = Vec::new();
                if strict || lead {
                    blocks.push(Blk::Para(first));
                }
                blocks.extend(rest);
                blocks
            });
        let items = prop::collection::vec(item, 1..3).boxed();
        prop_oneof![
            items.clone().prop_map(Blk::Bullet),
            (0u64..12, items).prop_map(|(s, i)| Blk::Ordered(s, i)),
            contents
                .prop_filter("quote needs content", |c| !c.is_empty())
                .prop_map(Blk::Quote),
        ]
    });
    prop::collection::vec(block, 1..5)
}

// A naive Markdown writer for the generated trees, independent of the one
// under test: every ASCII punctuation character in text is escaped.
fn md_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_punctuation() {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn md_inlines(inl: &[Inl]) -> String {
    inl.iter()
        .map(|i| match i {
            Inl::Text(t) => md_escape(t),
            Inl::Strong(c) => format!("**{}**", md_inlines(c)),
            Inl::Em(c) => format!("*{}*", md_inlines(c)),
            Inl::Strike(c) => format!("~~{}~~", md_inlines(c)),
            Inl::Code(c) => format!("`` {c} ``"),
            Inl::Link(h, t, c) => format!(
                "[{}](<{}> \"{}\")",
                md_inlines(c),
                md_escape(h),
                md_escape(t)
            ),
            Inl::Mention(n, id) => format!("@[{}]({id})", md_escape(n)),
            Inl::Break => "\\\n".to_string(),
        })
        .collect()
}

fn md_blocks(blocks: &[Blk]) -> String {
    blocks.iter().map(md_block).collect::<Vec<_>>().join("\n\n")
}

fn indent(s: &str, first: &str) -> String {
    let pad = " ".repeat(first.len());
    s.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{first}{l}")
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn md_block(b: &Blk) -> String {
    match b {
        Blk::Para(c) => md_inlines(c),
        Blk::Heading(l, c) => format!(
            "{} {}",
            "#".repeat(*l as usize),
            md_inlines(c).replace("\\\n", " ")
        ),
        Blk::Code(l, c) => format!("~~~~{}\n{c}\n~~~~", l.clone().unwrap_or_default()),
        Blk::Bullet(items) => items
            .iter()
            .map(|i| indent(&md_blocks(i), "- "))
            .collect::<Vec<_>>()
            .join("\n"),
        Blk::Ordered(s, items) => items
            .iter()
            .enumerate()
            .map(|(n, i)| indent(&md_blocks(i), &format!("{}. ", s + n as u64)))
            .collect::<Vec<_>>()
            .join("\n"),
        Blk::Quote(c) => md_blocks(c)
            .split('\n')
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        Blk::Rule => "***".to_string(),
        Blk::Table(rows) => {
            let line = |r: &Vec<Vec<Inl>>| {
                let cells: Vec<String> = r
                    .iter()
                    .map(|c| md_inlines(c).replace("\\\n", "<br>"))
                    .collect();
                format!("| {} |", cells.join(" | "))
            };
            let mut lines = vec![
                line(&rows[0]),
                format!("|{}", " --- |".repeat(rows[0].len())),
            ];
            lines.extend(rows[1..].iter().map(line));
            lines.join("\n")
        }
    }
}

// The ADF the strict trees stand for, in the converter's canonical form:
// marks ordered strong, em, strike, code, link; runs with equal marks merged;
// no whitespace at the edges of strong/em/strike; no trailing hard break.

#[derive(Clone, Default)]
struct Ctx {
    strong: bool,
    em: bool,
    strike: bool,
    link: Option<(String, String)>,
}

fn adf_inlines(inl: &[Inl], ctx: &Ctx, out: &mut Vec<Value>) {
    for i in inl {
        let mut inner = ctx.clone();
        match i {
            Inl::Text(t) | Inl::Code(t) => {
                let code = matches!(i, Inl::Code(_));
                let mut marks = Vec::new();
                if !code {
                    for (on, m) in [
                        (ctx.strong, "strong"),
                        (ctx.em, "em"),
                        (ctx.strike, "strike"),
                    ] {
                        if on {
                            marks.push(json!({"type": m}));
                        }
                    }
                } else {
                    marks.push(json!({"type": "code"}));
                }
                if let Some((h, title)) = &ctx.link {
                    let mut attrs = json!({"href": h});
                    if !title.is_empty() {
                        attrs["title"] = json!(title);
                    }
                    marks.push(json!({"type": "link", "attrs": attrs}));
                }
                out.push(json!({"type": "text", "text": t, "marks": marks}));
            }
            Inl::Strong(c) => {
                inner.strong = true;
                adf_inlines(c, &inner, out)
            }
            Inl::Em(c) => {
                inner.em = true;
                adf_inlines(c, &inner, out)
            }
            Inl::Strike(c) => {
                inner.strike = true;
                adf_inlines(c, &inner, out)
            }
            Inl::Link(h, t, c) => {
                inner.link = Some((h.clone(), t.clone()));
                adf_inlines(c, &inner, out)
            }
            Inl::Mention(n, id) => {
                out.push(json!({"type": "mention", "attrs": {"id": id, "text": format!("@{n}")}}))
            }
            Inl::Break => out.push(json!({"type": "hardBreak"})),
        }
    }
}

fn canonical_inline(inl: &[Inl], trailing_breaks_allowed: bool) -> Vec<Value> {
    let mut raw = Vec::new();
    adf_inlines(inl, &Ctx::default(), &mut raw);
    let mut split = Vec::new();
    for node in raw {
        let emph = node["marks"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| ["strong", "em", "strike"].contains(&m["type"].as_str().unwrap()))
        });
        if node["type"] != "text" || !emph {
            split.push(node);
            continue;
        }
        let t = node["text"].as_str().unwrap().to_string();
        let core = t.trim_matches(char::is_whitespace);
        let start = t.len() - t.trim_start_matches(char::is_whitespace).len();
        let plain: Vec<Value> = node["marks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "link")
            .cloned()
            .collect();
        for (part, marks) in [
            (&t[..start], json!(plain)),
            (core, node["marks"].clone()),
            (&t[start + core.len()..], json!(plain)),
        ] {
            if !part.is_empty() {
                split.push(json!({"type": "text", "text": part, "marks": marks}));
            }
        }
    }
    let mut out: Vec<Value> = Vec::new();
    for mut node in split {
        if node["marks"].as_array().is_some_and(Vec::is_empty) {
            node.as_object_mut().unwrap().remove("marks");
        }
        if let Some(last) = out.last_mut() {
            if last["type"] == "text"
                && node["type"] == "text"
                && last.get("marks") == node.get("marks")
            {
                let joined = format!(
                    "{}{}",
                    last["text"].as_str().unwrap(),
                    node["text"].as_str().unwrap()
                );
                last["text"] = json!(joined);
                continue;
            }
        }
        out.push(node);
    }
    if !trailing_breaks_allowed {
        while out.last().is_some_and(|n| n["type"] == "hardBreak") {
            out.pop();
        }
    }
    out
}

fn adf_blocks(blocks: &[Blk]) -> Vec<Value> {
    blocks.iter().filter_map(adf_block).collect()
}

fn adf_block(b: &Blk) -> Option<Value> {
    Some(match b {
        Blk::Para(c) => {
            let inline = canonical_inline(c, false);
            if inline.is_empty() {
                return None;
            }
            para(json!(inline))
        }
        Blk::Heading(l, c) => {
            json!({"type": "heading", "attrs": {"level": l}, "content": canonical_inline(c, true)})
        }
        Blk::Code(l, c) => {
            let mut node = json!({"type": "codeBlock", "content": if c.is_empty() { json!([]) } else { json!([text(c)]) }});
            if let Some(l) = l {
                node["attrs"] = json!({"language": l});
            }
            node
        }
        Blk::Bullet(items) => json!({"type": "bulletList", "content": adf_items(items)?}),
        Blk::Ordered(s, items) => {
            json!({"type": "orderedList", "attrs": {"order": s}, "content": adf_items(items)?})
        }
        Blk::Quote(c) => {
            let content = adf_blocks(c);
            if content.is_empty() {
                return None;
            }
            json!({"type": "blockquote", "content": content})
        }
        Blk::Rule => json!({"type": "rule"}),
        Blk::Table(rows) => {
            json!({"type": "table", "content": rows.iter().enumerate().map(|(i, r)| json!({
            "type": "tableRow",
            "content": r.iter().map(|c| json!({
                "type": if i == 0 { "tableHeader" } else { "tableCell" },
                "content": [para(json!(canonical_inline(c, false)))],
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()})
        }
    })
}

/// `None` when an item would not start with a non-empty paragraph (the
/// strict generator's shape, but its first paragraph may be all breaks).
fn adf_items(items: &[Vec<Blk>]) -> Option<Vec<Value>> {
    items
        .iter()
        .map(|i| {
            let content = adf_blocks(i);
            (content.first()?["type"] == "paragraph")
                .then(|| json!({"type": "listItem", "content": content}))
        })
        .collect()
}

fn strict_adf() -> impl Strategy<Value = Value> {
    blocks_strategy(true).prop_filter_map("item without a leading paragraph", |blocks| {
        let content: Option<Vec<Value>> = blocks.iter().map(adf_block).collect();
        content.map(|c| doc(json!(c)))
    })
}

// -------------------------------------------------------- properties

fn check_stable(md0: &str) -> Result<(), TestCaseError> {
    let adf0 = markdown_to_adf(md0);
    validate(&adf0).map_err(|e| TestCaseError::fail(format!("invalid ADF from {md0:?}: {e}")))?;
    let md1 = adf_to_markdown(&adf0);
    let adf1 = markdown_to_adf(&md1);
    let md2 = adf_to_markdown(&adf1);
    prop_assert_eq!(&md1, &md2, "md0 = {:?}", md0);
    prop_assert_eq!(&adf0, &adf1, "md0 = {:?}\nmd1 = {:?}", md0, md1);
    Ok(())
}

proptest! {
    // 256 cases each by default; PROPTEST_CASES=20000 for a longer hunt.

    #[test]
    fn markdown_round_trip_is_stable_and_valid(blocks in blocks_strategy(false)) {
        check_stable(&md_blocks(&blocks))?;
    }

    #[test]
    fn any_markdown_text_is_stable_and_valid(md in "([-*_`~#>|\\[\\]()!@&<:. 0-9a-z\n\\\\]|  |\n\n|- |1\\. |```){0,40}") {
        check_stable(&md)?;
    }

    #[test]
    fn adf_round_trip_is_identity(adf in strict_adf()) {
        validate(&adf).map_err(|e| TestCaseError::fail(format!("generator made invalid ADF: {e}")))?;
        let md = adf_to_markdown(&adf);
        prop_assert_eq!(markdown_to_adf(&md), adf, "md = {:?}", md);
    }
}
