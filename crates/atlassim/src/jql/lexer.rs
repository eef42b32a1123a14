//! JQL tokenizer. Positions are 1-based character offsets, as Jira reports
//! them in `(line 1, character N)`.

use super::JqlError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LParen,
    RParen,
    Comma,
    /// `=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `!~`
    Op(&'static str),
    /// `&&`/`&`, `||`/`|`, `!` — Jira's symbolic AND, OR, NOT.
    And,
    Or,
    Not,
    /// An unquoted word (field name, keyword, value, function name).
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// 1-based character position of the token's first character.
    pub pos: usize,
}

impl Token {
    /// How Jira names a token in "… but got 'x'" messages.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Op(o) => (*o).into(),
            Tok::And => "AND".into(),
            Tok::Or => "OR".into(),
            Tok::Not => "NOT".into(),
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => s.clone(),
            Tok::Eof => String::new(),
        }
    }
}

/// Characters allowed in an unquoted word. Jira is stricter about some of
/// them (`/`, `.`); accepting them keeps dates like `2024/01/31` and
/// `issue.property[x].y` usable unquoted, as Jira accepts them in practice.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '[' | ']' | ':' | '@' | '+')
}

/// Characters Jira reserves: they must be quoted.
fn is_reserved(c: char) -> bool {
    matches!(
        c,
        '%' | '^' | '$' | '#' | '?' | ';' | '*' | '{' | '}' | '`' | '\\' | '\''
    )
}

pub fn tokenize(input: &str) -> Result<Vec<Token>, JqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = chars.get(i + 1).copied();
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '=' => (Tok::Op("="), 1),
            '~' => (Tok::Op("~"), 1),
            '!' if two == Some('=') => (Tok::Op("!="), 2),
            '!' if two == Some('~') => (Tok::Op("!~"), 2),
            '!' => (Tok::Not, 1),
            '>' if two == Some('=') => (Tok::Op(">="), 2),
            '>' => (Tok::Op(">"), 1),
            '<' if two == Some('=') => (Tok::Op("<="), 2),
            '<' => (Tok::Op("<"), 1),
            '&' if two == Some('&') => (Tok::And, 2),
            '&' => (Tok::And, 1),
            '|' if two == Some('|') => (Tok::Or, 2),
            '|' => (Tok::Or, 1),
            '"' | '\'' => {
                let (s, end) = quoted(&chars, i)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    pos,
                });
                i = end;
                continue;
            }
            c if is_word_char(c) => {
                let start = i;
                while i < chars.len() && is_word_char(chars[i]) {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect();
                out.push(Token {
                    tok: Tok::Word(w),
                    pos,
                });
                continue;
            }
            c if is_reserved(c) || !c.is_control() => {
                return Err(JqlError::parse(format!(
                    "The character '{c}' is a reserved JQL character. You must enclose it in a string or use the escape '\\u{:04x}' instead. (line 1, character {pos})",
                    c as u32
                )));
            }
            _ => {
                return Err(JqlError::parse(format!(
                    "The character '\\u{:04x}' is illegal in JQL. (line 1, character {pos})",
                    c as u32
                )))
            }
        };
        out.push(Token { tok, pos });
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len() + 1,
    });
    Ok(out)
}

/// Reads a quoted string starting at `start` (the quote). Returns the
/// unescaped text and the index after the closing quote.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), JqlError> {
    let quote = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((s, i + 1));
        }
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else { break };
            match n {
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'r' => s.push('\r'),
                ' ' => s.push(' '),
                'u' => {
                    let hex: String = chars.iter().skip(i + 2).take(4).collect();
                    let ch = (hex.len() == 4)
                        .then(|| u32::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .and_then(char::from_u32);
                    match ch {
                        Some(ch) => {
                            s.push(ch);
                            i += 6;
                            continue;
                        }
                        None => {
                            return Err(JqlError::parse(format!(
                                "The escape sequence '\\u{hex}' in the quoted string is invalid. (line 1, character {})",
                                i + 1
                            )))
                        }
                    }
                }
                other => s.push(other),
            }
            i += 2;
            continue;
        }
        s.push(c);
        i += 1;
    }
    Err(JqlError::parse(format!(
        "The quoted string '{s}' has not been completed. (line 1, character {})",
        start + 1
    )))
}
