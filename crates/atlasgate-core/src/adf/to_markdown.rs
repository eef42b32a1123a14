//! ADF → Markdown. Blocks render to lines; inline content renders to a token
//! list that is then repaired where CommonMark would read it differently
//! from what the ADF says (emphasis next to letters, whitespace at line
//! edges, characters that start a block at a line start).

use serde_json::Value;

use super::{array, node_type, PLACEHOLDER_PREFIX};

/// Renders an ADF document (or any single ADF node) as Markdown, in the form
/// [`super::markdown_to_adf`] reads back. Nodes outside the supported subset
/// become visible placeholders (see the module docs); nothing is dropped
/// except what has no visible content (an empty paragraph, a hard break at
/// the end of a paragraph).
pub fn adf_to_markdown(doc: &Value) -> String {
    if !doc.is_object() {
        return String::new();
    }
    let blocks = if node_type(doc) == "doc" {
        content(doc)
    } else {
        std::slice::from_ref(doc)
    };
    let mut out = render_blocks(blocks, false);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn content(node: &Value) -> &[Value] {
    array(node, "content")
}

fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get("attrs").and_then(|a| a.get(name))
}

fn attr_str<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    attr(node, name).and_then(Value::as_str)
}

fn is_list(t: &str) -> bool {
    matches!(t, "bulletList" | "orderedList")
}

/// Inline node types, known or not: in block position they render as a
/// paragraph of their own.
fn is_inline(t: &str) -> bool {
    matches!(
        t,
        "text"
            | "hardBreak"
            | "mention"
            | "emoji"
            | "status"
            | "date"
            | "inlineCard"
            | "mediaInline"
            | "placeholder"
            | "inlineExtension"
    )
}

// ---------------------------------------------------------------- blocks

fn render_blocks(nodes: &[Value], in_item: bool) -> String {
    let mut out = String::new();
    let mut prev: Option<&str> = None;
    let mut alternate = false;
    for node in nodes {
        let t = node_type(node);
        // Two lists of the same kind in a row would merge into one; a
        // different bullet (or `)` instead of `.`) keeps them apart.
        alternate = is_list(t) && prev == Some(t) && !alternate;
        let rendered = render_block(node, alternate);
        if rendered.is_empty() && t == "paragraph" {
            continue;
        }
        if let Some(p) = prev {
            let tight = in_item && p == "paragraph" && can_interrupt_paragraph(node, &rendered);
            out.push_str(if tight { "\n" } else { "\n\n" });
        }
        out.push_str(&rendered);
        prev = Some(t);
    }
    out
}

/// Only a list whose first item has content, and an ordered one only when
/// it starts at 1, may follow a paragraph without a blank line.
fn can_interrupt_paragraph(list: &Value, rendered: &str) -> bool {
    let first_line = rendered.split('\n').next().unwrap_or("");
    match node_type(list) {
        "bulletList" => first_line.contains(' '),
        "orderedList" => {
            attr(list, "order").and_then(Value::as_u64) == Some(1) && first_line.contains(' ')
        }
        _ => false,
    }
}

fn render_block(node: &Value, alternate: bool) -> String {
    let t = node_type(node);
    match t {
        "paragraph" => render_inline(content(node), Mode::Paragraph),
        "heading" => {
            let level = attr(node, "level")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 6) as usize;
            let text = render_inline(content(node), Mode::Heading);
            let hashes = "#".repeat(level);
            if text.is_empty() {
                hashes
            } else {
                format!("{hashes} {text}")
            }
        }
        "codeBlock" => render_code_block(node),
        "bulletList" => render_list(node, None, alternate),
        "orderedList" => {
            let start = attr(node, "order").and_then(Value::as_u64).unwrap_or(1);
            render_list(node, Some(start), alternate)
        }
        "blockquote" => prefix_lines(&render_blocks(content(node), false), "> ", ">"),
        "rule" => "---".to_string(),
        "table" => render_table(node),
        _ if is_inline(t) => render_inline(std::slice::from_ref(node), Mode::Paragraph),
        _ => render_unsupported_block(node),
    }
}

fn prefix_lines(text: &str, prefix: &str, empty_prefix: &str) -> String {
    text.split('\n')
        .map(|line| {
            if line.is_empty() {
                empty_prefix.to_string()
            } else {
                format!("{prefix}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_code_block(node: &Value) -> String {
    let text: String = content(node)
        .iter()
        .filter_map(|n| n.get("text").and_then(Value::as_str))
        .collect();
    let language = attr_str(node, "language").unwrap_or("");
    // A backtick fence cannot carry an info string containing a backtick.
    let fence_char = if language.contains('`') { '~' } else { '`' };
    let longest = longest_run(&text, fence_char);
    let fence = fence_char.to_string().repeat((longest + 1).max(3));
    let language = info_string(language, fence_char);
    if text.is_empty() {
        format!("{fence}{language}\n{fence}")
    } else {
        format!("{fence}{language}\n{text}\n{fence}")
    }
}

/// The info string is read with backslash escapes and entities decoded.
fn info_string(language: &str, fence_char: char) -> String {
    let chars: Vec<char> = language.chars().collect();
    let mut out = String::new();
    if language.starts_with(fence_char) {
        out.push(' ');
    }
    for (i, &c) in chars.iter().enumerate() {
        if c == '\\' || (c == '&' && starts_reference(&chars[i + 1..])) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn longest_run(text: &str, c: char) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

fn render_list(node: &Value, start: Option<u64>, alternate: bool) -> String {
    let mut items = Vec::new();
    for (i, item) in content(node).iter().enumerate() {
        let marker = match start {
            Some(n) => format!("{}{}", n + i as u64, if alternate { ')' } else { '.' }),
            None => (if alternate { "*" } else { "-" }).to_string(),
        };
        let body = if node_type(item) == "listItem" {
            render_blocks(content(item), true)
        } else {
            render_block(item, false)
        };
        let indent = " ".repeat(marker.len() + 1);
        // An item that does not open with text puts its marker on a line of
        // its own: `- - -` would be a rule, `- - a` is fine but not general.
        let opens_with_text = content(item)
            .first()
            .is_some_and(|b| node_type(b) == "paragraph" && !render_block(b, false).is_empty());
        let mut lines = body.split('\n');
        let mut rendered = marker.clone();
        if opens_with_text || node_type(item) != "listItem" {
            if let Some(first) = lines.next().filter(|l| !l.is_empty()) {
                rendered = format!("{marker} {first}");
            }
        }
        for line in lines {
            rendered.push('\n');
            if !line.is_empty() {
                rendered.push_str(&indent);
                rendered.push_str(line);
            }
        }
        items.push(rendered);
    }
    items.join("\n")
}

/// GFM tables have exactly one header row and no spans: the first ADF row is
/// the header whatever its cells are, and short rows are padded.
fn render_table(node: &Value) -> String {
    let rows: Vec<Vec<String>> = content(node)
        .iter()
        .map(|row| content(row).iter().map(render_cell).collect())
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for i in 0..width {
            let cell = cells.get(i).map_or("", String::as_str);
            s.push(' ');
            s.push_str(cell);
            s.push_str(" |");
        }
        s
    };
    let mut out = vec![line(&rows[0]), line(&vec!["---".to_string(); width])];
    out.extend(rows[1..].iter().map(|r| line(r)));
    out.join("\n")
}

fn render_cell(cell: &Value) -> String {
    let mut parts = Vec::new();
    cell_parts(content(cell), &mut parts);
    parts.retain(|p| !p.is_empty());
    parts.join("<br>")
}

/// A GFM cell is one line of inline content: blocks other than paragraphs
/// are flattened into lines joined by `<br>`.
fn cell_parts(blocks: &[Value], parts: &mut Vec<String>) {
    for block in blocks {
        let t = node_type(block);
        match t {
            "paragraph" | "heading" => parts.push(render_inline(content(block), Mode::Cell)),
            "bulletList" | "orderedList" => {
                let start = attr(block, "order").and_then(Value::as_u64).unwrap_or(1);
                for (i, item) in content(block).iter().enumerate() {
                    let mut item_parts = Vec::new();
                    cell_parts(content(item), &mut item_parts);
                    let marker = if t == "orderedList" {
                        format!("{}. ", start + i as u64)
                    } else {
                        "• ".to_string()
                    };
                    if let Some(first) = item_parts.first_mut() {
                        first.insert_str(0, &marker);
                    }
                    parts.extend(item_parts);
                }
            }
            "codeBlock" => {
                let text: String = content(block)
                    .iter()
                    .filter_map(|n| n.get("text").and_then(Value::as_str))
                    .collect();
                parts.extend(text.split('\n').map(|l| code_span(l, true)));
            }
            "blockquote" => cell_parts(content(block), parts),
            "rule" => {}
            _ if is_inline(t) => parts.push(render_inline(std::slice::from_ref(block), Mode::Cell)),
            _ => parts.push(placeholder(t, &detail(block))),
        }
    }
}

fn render_unsupported_block(node: &Value) -> String {
    let t = node_type(node);
    let children = content(node);
    if !has_text(node) {
        return placeholder(t, &detail(node));
    }
    let inner = if children.first().is_some_and(|c| is_inline(node_type(c))) {
        render_inline(children, Mode::Paragraph)
    } else {
        render_blocks(children, false)
    };
    let own = leaf_detail(node).unwrap_or_default();
    format!(
        "{}\n\n{inner}\n\n[end of unsupported ADF node: {}]",
        placeholder(t, &own),
        escape_text(t, false)
    )
}

// ---------------------------------------------------------- placeholders

fn placeholder(node_type: &str, detail: &str) -> String {
    let t = if node_type.is_empty() {
        "unknown"
    } else {
        node_type
    };
    let mut s = format!("{PLACEHOLDER_PREFIX}{}", escape_text(t, false));
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(&escape_text(detail, false));
    }
    s.push(']');
    s
}

fn has_text(node: &Value) -> bool {
    node.get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
        || content(node).iter().any(has_text)
}

/// What a placeholder shows of a node: its text content, or else the first
/// telling attribute of it or of a descendant.
fn detail(node: &Value) -> String {
    let text = text_content(node);
    if !text.trim().is_empty() {
        return text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    leaf_detail(node)
        .or_else(|| content(node).iter().find_map(leaf_detail))
        .unwrap_or_default()
}

fn text_content(node: &Value) -> String {
    let mut out = String::new();
    if let Some(t) = node.get("text").and_then(Value::as_str) {
        out.push_str(t);
    } else if node_type(node) == "mention" {
        out.push_str(attr_str(node, "text").unwrap_or(""));
    }
    for child in content(node) {
        if !out.is_empty() && !is_inline(node_type(child)) {
            out.push(' ');
        }
        out.push_str(&text_content(child));
    }
    out
}

fn leaf_detail(node: &Value) -> Option<String> {
    for name in ["text", "shortName", "title", "alt", "url", "extensionKey"] {
        if let Some(v) = attr_str(node, name).filter(|v| !v.is_empty()) {
            return Some(v.to_string());
        }
    }
    let timestamp = attr(node, "timestamp")?;
    let millis = match timestamp {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Some(iso_date(millis))
}

/// The UTC day of a `date` node's millisecond timestamp, as `YYYY-MM-DD`
/// (the civil-from-days algorithm, proleptic Gregorian calendar).
fn iso_date(millis: i64) -> String {
    let z = millis.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// ---------------------------------------------------------------- inline

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Paragraph,
    /// One line: a hard break is written `<br>`, and `#` is escaped.
    Heading,
    /// One line, inside `|`: a hard break is `<br>`, pipes are escaped.
    Cell,
}

#[derive(Clone, PartialEq, Eq)]
enum MarkKind {
    Link { href: String, title: String },
    Strong,
    Em,
    Strike,
}

impl MarkKind {
    fn delimiter(&self) -> Option<(char, usize)> {
        match self {
            MarkKind::Strong => Some(('*', 2)),
            MarkKind::Em => Some(('_', 1)),
            MarkKind::Strike => Some(('~', 2)),
            MarkKind::Link { .. } => None,
        }
    }
}

enum Piece {
    /// `marks` in canonical order: link, strong, em, strike.
    Text {
        text: String,
        marks: Vec<MarkKind>,
        code: bool,
    },
    Mention {
        name: String,
        id: String,
    },
    Break,
    Placeholder(String),
}

#[derive(Clone, Debug)]
enum Tok {
    /// Escaped text; its first or last character may still be replaced by a
    /// numeric character reference.
    Text(String),
    /// Markdown syntax or escaped content that is never modified.
    Raw(String),
    LinkOpen,
    Delim {
        ch: char,
        len: usize,
        open: bool,
    },
    Break,
    Placeholder(String),
}

impl Tok {
    fn as_str(&self) -> &str {
        match self {
            Tok::Text(s) | Tok::Raw(s) | Tok::Placeholder(s) => s,
            Tok::LinkOpen => "[",
            Tok::Delim { ch, .. } => match ch {
                '*' => "*",
                '_' => "_",
                _ => "~",
            },
            Tok::Break => "",
        }
    }
}

fn pieces(nodes: &[Value]) -> Vec<Piece> {
    let mut out = Vec::new();
    for node in nodes {
        match node_type(node) {
            "text" => {
                let text = node.get("text").and_then(Value::as_str).unwrap_or("");
                let (marks, code) = read_marks(node);
                let lines: Vec<&str> = text.split('\n').collect();
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        out.push(Piece::Break);
                    }
                    // A CR before a LF belongs to that line ending; any other
                    // CR is text (`escape_text` writes it `&#13;`).
                    let line = match i + 1 < lines.len() {
                        true => line.strip_suffix('\r').unwrap_or(line),
                        false => line,
                    };
                    push_text_piece(&mut out, line.to_string(), &marks, code);
                }
            }
            "hardBreak" => out.push(Piece::Break),
            "mention" => {
                let text = attr_str(node, "text").unwrap_or("");
                out.push(Piece::Mention {
                    name: text.strip_prefix('@').unwrap_or(text).to_string(),
                    id: attr_str(node, "id").unwrap_or("").to_string(),
                });
            }
            t => out.push(Piece::Placeholder(placeholder(t, &detail(node)))),
        }
    }
    out
}

/// Marks in canonical order, and whether the code mark is among them.
/// Marks outside the subset are not rendered; their text is.
fn read_marks(node: &Value) -> (Vec<MarkKind>, bool) {
    let mut link = None;
    let (mut strong, mut em, mut strike, mut code) = (false, false, false, false);
    for mark in node
        .get("marks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match node_type(mark) {
            "strong" => strong = true,
            "em" => em = true,
            "strike" => strike = true,
            "code" => code = true,
            "link" => {
                link = Some(MarkKind::Link {
                    href: attr_str(mark, "href").unwrap_or("").to_string(),
                    title: attr_str(mark, "title").unwrap_or("").to_string(),
                })
            }
            _ => {}
        }
    }
    let mut marks: Vec<MarkKind> = link.into_iter().collect();
    for (on, kind) in [
        (strong, MarkKind::Strong),
        (em, MarkKind::Em),
        (strike, MarkKind::Strike),
    ] {
        if on {
            marks.push(kind);
        }
    }
    (marks, code)
}

/// Emphasis cannot begin or end with whitespace in Markdown, so edge
/// whitespace is written outside the delimiters (keeping only the link).
fn push_text_piece(out: &mut Vec<Piece>, text: String, marks: &[MarkKind], code: bool) {
    if text.is_empty() {
        return;
    }
    let emphasised = marks.iter().any(|m| m.delimiter().is_some());
    if code || !emphasised {
        out.push(Piece::Text {
            text,
            marks: marks.to_vec(),
            code,
        });
        return;
    }
    let core = text.trim_matches(char::is_whitespace);
    let lead_len = text.len() - text.trim_start().len();
    let lead = &text[..lead_len];
    let trail = &text[lead_len + core.len()..];
    let plain: Vec<MarkKind> = marks
        .iter()
        .filter(|m| m.delimiter().is_none())
        .cloned()
        .collect();
    for (part, part_marks) in [(lead, &plain[..]), (core, marks), (trail, &plain[..])] {
        if !part.is_empty() {
            out.push(Piece::Text {
                text: part.to_string(),
                marks: part_marks.to_vec(),
                code: false,
            });
        }
    }
}

fn render_inline(nodes: &[Value], mode: Mode) -> String {
    let mut pieces = pieces(nodes);
    // Markdown has no way to end a paragraph with a hard break.
    if mode == Mode::Paragraph {
        while matches!(pieces.last(), Some(Piece::Break)) {
            pieces.pop();
        }
    }
    let mut toks = tokens(&pieces, mode);
    fix_before_links(&mut toks);
    fix_after_placeholders(&mut toks);
    fix_line_edges(&mut toks);
    fix_flanking(&mut toks);
    let mut out = String::new();
    for tok in &toks {
        match tok {
            Tok::Break if mode == Mode::Paragraph => out.push_str("\\\n"),
            Tok::Break => out.push_str("<br>"),
            Tok::Delim { ch, len, .. } => out.extend(std::iter::repeat_n(*ch, *len)),
            t => out.push_str(t.as_str()),
        }
    }
    out
}

fn close_mark(toks: &mut Vec<Tok>, mark: &MarkKind) {
    match mark {
        MarkKind::Link { href, title } => toks.push(Tok::Raw(format!(
            "]({}{})",
            destination(href),
            link_title(title)
        ))),
        m => {
            if let Some((ch, len)) = m.delimiter() {
                toks.push(Tok::Delim {
                    ch,
                    len,
                    open: false,
                });
            }
        }
    }
}

fn tokens(pieces: &[Piece], mode: Mode) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut stack: Vec<MarkKind> = Vec::new();
    let no_marks: Vec<MarkKind> = Vec::new();
    for piece in pieces {
        let wanted = match piece {
            Piece::Text { marks, .. } => marks,
            _ => &no_marks,
        };
        // Close from the top down to the deepest mark that continues, then
        // open what is missing: marks nest, so a mark that ends forces the
        // ones inside it to close and reopen.
        let keep = stack.iter().take_while(|m| wanted.contains(m)).count();
        while stack.len() > keep {
            if let Some(mark) = stack.pop() {
                close_mark(&mut toks, &mark);
            }
        }
        for mark in wanted {
            if !stack.contains(mark) {
                toks.push(match mark.delimiter() {
                    Some((ch, len)) => Tok::Delim {
                        ch,
                        len,
                        open: true,
                    },
                    None => Tok::LinkOpen,
                });
                stack.push(mark.clone());
            }
        }
        match piece {
            Piece::Text {
                text, code: true, ..
            } => toks.push(Tok::Raw(code_span(text, mode == Mode::Cell))),
            Piece::Text { text, .. } => {
                toks.push(Tok::Text(escape_text(text, mode == Mode::Heading)))
            }
            Piece::Mention { name, id } => toks.push(Tok::Raw(format!(
                "@[{}]({})",
                escape_text(name, mode == Mode::Heading),
                destination(id)
            ))),
            Piece::Break => toks.push(Tok::Break),
            Piece::Placeholder(p) => toks.push(Tok::Placeholder(p.clone())),
        }
    }
    while let Some(mark) = stack.pop() {
        close_mark(&mut toks, &mark);
    }
    toks
}

/// `@` or `!` right before a link would make it a mention or an image.
fn fix_before_links(toks: &mut [Tok]) {
    for i in 1..toks.len() {
        if matches!(toks[i], Tok::LinkOpen) {
            if let Tok::Text(prev) = &mut toks[i - 1] {
                if prev.ends_with('@') || prev.ends_with('!') {
                    prev.insert(prev.len() - 1, '\\');
                }
            }
        }
    }
}

/// A placeholder is written with bare brackets for legibility; `(` or `:`
/// right after it would make it a link or a link definition.
fn fix_after_placeholders(toks: &mut [Tok]) {
    for i in 1..toks.len() {
        if matches!(toks[i - 1], Tok::Placeholder(_)) {
            if let Tok::Text(next) = &mut toks[i] {
                if next.starts_with('(') || next.starts_with(':') {
                    next.insert(0, '\\');
                }
            }
        }
    }
}

/// At a line's edges Markdown strips spaces and tabs, and some characters
/// start a block (`#`, `>`, `-`, `+`, `=`, `1.`). Lines are separated by hard
/// breaks; only unmarked text can sit at an edge, as emphasis never starts or
/// ends with whitespace.
fn fix_line_edges(toks: &mut [Tok]) {
    let mut line_start = 0;
    for i in 0..=toks.len() {
        if i < toks.len() && !matches!(toks[i], Tok::Break) {
            continue;
        }
        if line_start < i {
            if let Tok::Text(first) = &mut toks[line_start] {
                protect_line_start(first);
            }
            if let Tok::Text(last) = &mut toks[i - 1] {
                if let Some(c) = last.chars().last().filter(|c| *c == ' ' || *c == '\t') {
                    last.pop();
                    last.push_str(&char_ref(c));
                }
            }
        }
        line_start = i + 1;
    }
}

fn protect_line_start(text: &mut String) {
    if let Some(c) = text.chars().next().filter(|c| *c == ' ' || *c == '\t') {
        text.replace_range(..1, &char_ref(c));
        return;
    }
    if text.starts_with(['#', '>', '-', '+', '=']) {
        text.insert(0, '\\');
        return;
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if (1..=9).contains(&digits) && text[digits..].starts_with(['.', ')']) {
        text.insert(digits, '\\');
    }
}

fn char_ref(c: char) -> String {
    format!("&#{};", c as u32)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Punct,
    Alnum,
    /// Non-ASCII, non-whitespace: Unicode punctuation or not, so emphasis
    /// must work either way.
    Other,
}

fn class(c: Option<char>) -> Class {
    match c {
        None => Class::Space,
        Some(c) if c.is_whitespace() => Class::Space,
        Some(c) if c.is_ascii_punctuation() => Class::Punct,
        Some(c) if c.is_ascii() => Class::Alnum,
        Some(_) => Class::Other,
    }
}

/// CommonMark's rule for a delimiter run, with each `Other` neighbour read
/// both as punctuation and as not.
fn run_works(ch: char, open: bool, prev: Class, next: Class) -> bool {
    let readings = |c: Class| -> &'static [bool] {
        match c {
            Class::Other => &[false, true],
            Class::Punct => &[true],
            _ => &[false],
        }
    };
    readings(prev).iter().all(|&prev_punct| {
        readings(next).iter().all(|&next_punct| {
            let (prev_space, next_space) = (prev == Class::Space, next == Class::Space);
            let left = !next_space && (!next_punct || prev_space || prev_punct);
            let right = !prev_space && (!prev_punct || next_space || next_punct);
            match (ch, open) {
                ('_', true) => left && (!right || prev_punct),
                ('_', false) => right && (!left || next_punct),
                (_, true) => left,
                (_, false) => right,
            }
        })
    })
}

/// Emphasis delimiters between a letter and punctuation do not count in
/// Markdown (`a**(b)**`). Writing the outside letter as a character reference
/// (`&#97;**(b)**`) makes them count and parses back to the same text.
fn fix_flanking(toks: &mut [Tok]) {
    // Encoding a letter turns it into punctuation, which can break the run
    // on its other side: repeat until nothing changes. Each pass encodes at
    // least one letter, so this ends.
    while fix_flanking_pass(toks) {}
}

fn fix_flanking_pass(toks: &mut [Tok]) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < toks.len() {
        if !matches!(toks[i], Tok::Delim { .. }) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < toks.len() && matches!(toks[j], Tok::Delim { .. }) {
            j += 1;
        }
        let before = |toks: &[Tok]| {
            i.checked_sub(1)
                .and_then(|k| toks[k].as_str().chars().last())
        };
        let after = |toks: &[Tok]| toks.get(j).and_then(|t| t.as_str().chars().next());
        let first_next = toks[i + 1..j]
            .first()
            .map_or(after(toks), |t| t.as_str().chars().next());
        if let Tok::Delim { ch, open: true, .. } = toks[i] {
            if !run_works(ch, true, class(before(toks)), class(first_next)) && i > 0 {
                changed |= encode_last(&mut toks[i - 1]);
            }
        }
        let last_prev = if j - i > 1 {
            toks[j - 2].as_str().chars().last()
        } else {
            before(toks)
        };
        if let Tok::Delim {
            ch, open: false, ..
        } = toks[j - 1]
        {
            if !run_works(ch, false, class(last_prev), class(after(toks))) && j < toks.len() {
                changed |= encode_first(&mut toks[j]);
            }
        }
        i = j;
    }
    changed
}

fn encode_last(tok: &mut Tok) -> bool {
    if let Tok::Text(s) = tok {
        if let Some(c) = s.chars().last().filter(|c| !c.is_ascii_punctuation()) {
            s.truncate(s.len() - c.len_utf8());
            s.push_str(&char_ref(c));
            return true;
        }
    }
    false
}

fn encode_first(tok: &mut Tok) -> bool {
    if let Tok::Text(s) = tok {
        if let Some(c) = s.chars().next().filter(|c| !c.is_ascii_punctuation()) {
            s.replace_range(..c.len_utf8(), &char_ref(c));
            return true;
        }
    }
    false
}

// -------------------------------------------------------------- escaping

/// Escapes text so that Markdown reads it back as the same text. Line-start
/// hazards are handled separately ([`protect_line_start`]).
fn escape_text(text: &str, heading: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let escape = match c {
            // Markdown reads a raw CR as a line ending (found by fuzzing:
            // inline HTML spanning one came back without it), and a form
            // feed as whitespace, stripped at a heading's start (also found
            // by fuzzing).
            '\r' | '\u{c}' => {
                out.push_str(&char_ref(c));
                continue;
            }
            '\\' | '`' | '*' | '[' | ']' | '<' | '~' | '|' => true,
            '#' => heading,
            // `snake_case` stays readable: an underscore between letters can
            // neither open nor close emphasis. Next to the text's first or
            // last letter it is escaped, as those may become references.
            '_' => {
                let inner =
                    |k: usize| k > 0 && k + 1 < chars.len() && chars[k].is_ascii_alphanumeric();
                !(i > 0 && inner(i - 1) && inner(i + 1))
            }
            '&' => starts_reference(&chars[i + 1..]),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `&` followed by these characters could be read as an entity or
/// numeric character reference (`&amp;`, `&#35;`), or become one once the
/// text is cut here.
fn starts_reference(rest: &[char]) -> bool {
    let body = rest.strip_prefix(&['#']).unwrap_or(rest);
    let name_len = body
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    name_len > 0 && matches!(body.get(name_len), None | Some(';'))
}

fn destination(url: &str) -> String {
    let pointy = url.is_empty()
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '<' | '>'));
    let chars: Vec<char> = url.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\n' | '\r' => {
                out.push_str(if c == '\n' { "%0A" } else { "%0D" });
                continue;
            }
            '\\' | '|' | '<' | '>' => out.push('\\'),
            '&' if starts_reference(&chars[i + 1..]) => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    if pointy {
        format!("<{out}>")
    } else {
        out
    }
}

fn link_title(title: &str) -> String {
    if title.is_empty() {
        return String::new();
    }
    let chars: Vec<char> = title.chars().collect();
    let mut out = String::from(" \"");
    for (i, &c) in chars.iter().enumerate() {
        match c {
            // A line break in a title is written as a character reference
            // (CommonMark reads references in titles): the title keeps it,
            // and the Markdown stays on one line (a table cell may hold it).
            '\n' => {
                out.push_str("&#10;");
                continue;
            }
            '\r' => {
                out.push_str("&#13;");
                continue;
            }
            '"' | '\\' | '|' => out.push('\\'),
            '&' if starts_reference(&chars[i + 1..]) => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A code span with a fence longer than any backtick run inside, padded when
/// the content would otherwise lose or merge an edge character.
fn code_span(text: &str, in_cell: bool) -> String {
    let mut body = text.replace(['\n', '\r'], " ");
    if in_cell {
        body = body.replace('|', "\\|");
    }
    let fence = "`".repeat(longest_run(&body, '`') + 1);
    let all_spaces = body.chars().all(|c| c == ' ');
    let pad = body.starts_with('`')
        || body.ends_with('`')
        || (!all_spaces && body.starts_with(' ') && body.ends_with(' '));
    if pad {
        format!("{fence} {body} {fence}")
    } else {
        format!("{fence}{body}{fence}")
    }
}
