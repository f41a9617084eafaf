//! A small Rust lexer (comments, every kind of literal, lifetimes, raw
//! identifiers) used by the import check, and the spelling of requirement
//! IDs (`SR-AREA-NNN`, `sr_area_nnn`). The test functions themselves are
//! found by `testscan`, with `syn`.

use std::fmt;

/// Why a file could not be scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanError {
    /// 1-based line.
    pub line: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Ident,
    Punct(u8),
    Open(u8),
    Close(u8),
    Literal,
    Lifetime,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn err<T>(&self, at: usize, message: &str) -> Result<T, ScanError> {
        Err(ScanError {
            line: line_of(self.src, at),
            message: message.to_string(),
        })
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.pos + ahead).copied()
    }

    /// Skips an escaped string body; `pos` is just after the opening quote.
    fn skip_quoted(&mut self, start: usize) -> Result<(), ScanError> {
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        self.err(start, "unterminated string literal")
    }

    /// Skips a raw string; `pos` is at the first `#` or the opening quote.
    fn skip_raw(&mut self, start: usize) -> Result<(), ScanError> {
        let mut hashes = 0;
        while self.peek(0) == Some(b'#') {
            hashes += 1;
            self.pos += 1;
        }
        if self.peek(0) != Some(b'"') {
            return self.err(start, "malformed raw string literal");
        }
        self.pos += 1;
        while self.pos < self.b.len() {
            if self.b[self.pos] == b'"' {
                let after = self.pos + 1;
                let closing = self.b[after..].iter().take_while(|c| **c == b'#').count();
                if closing >= hashes {
                    self.pos = after + hashes;
                    return Ok(());
                }
            }
            self.pos += 1;
        }
        self.err(start, "unterminated raw string literal")
    }

    /// Skips a char or byte literal body; `pos` is just after the quote.
    fn skip_char(&mut self, start: usize) -> Result<(), ScanError> {
        let limit = self.pos + 16;
        while self.pos < self.b.len() && self.pos < limit {
            match self.b[self.pos] {
                b'\\' => self.pos += 2,
                b'\'' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\n' => break,
                _ => self.pos += 1,
            }
        }
        self.err(start, "unterminated character literal")
    }

    fn tokens(mut self) -> Result<Vec<Token>, ScanError> {
        let mut out = Vec::new();
        while self.pos < self.b.len() {
            let start = self.pos;
            let c = self.b[start];
            let kind = match c {
                c if c.is_ascii_whitespace() => {
                    self.pos += 1;
                    continue;
                }
                b'/' if self.peek(1) == Some(b'/') => {
                    while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                    continue;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    self.pos += 2;
                    let mut depth = 1;
                    while depth > 0 {
                        match (self.peek(0), self.peek(1)) {
                            (None, _) => return self.err(start, "unterminated block comment"),
                            (Some(b'/'), Some(b'*')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            (Some(b'*'), Some(b'/')) => {
                                depth -= 1;
                                self.pos += 2;
                            }
                            _ => self.pos += 1,
                        }
                    }
                    continue;
                }
                b'"' => {
                    self.pos += 1;
                    self.skip_quoted(start)?;
                    Kind::Literal
                }
                b'\'' => {
                    if self.peek(1) == Some(b'\\') {
                        self.pos += 1;
                        self.skip_char(start)?;
                        Kind::Literal
                    } else {
                        let ch_len = self.src[start + 1..]
                            .chars()
                            .next()
                            .map_or(1, char::len_utf8);
                        if self.b.get(start + 1 + ch_len) == Some(&b'\'') {
                            self.pos = start + 2 + ch_len;
                            Kind::Literal
                        } else {
                            self.pos += 1;
                            while self.peek(0).is_some_and(is_ident_continue) {
                                self.pos += 1;
                            }
                            Kind::Lifetime
                        }
                    }
                }
                c if is_ident_start(c) => {
                    while self.peek(0).is_some_and(is_ident_continue) {
                        self.pos += 1;
                    }
                    let ident = &self.src[start..self.pos];
                    let next = self.peek(0);
                    let raw_prefix = matches!(ident, "r" | "br" | "cr");
                    if raw_prefix && next == Some(b'"') {
                        self.skip_raw(start)?;
                        Kind::Literal
                    } else if raw_prefix && next == Some(b'#') {
                        let after_hashes = self.b[self.pos..]
                            .iter()
                            .position(|c| *c != b'#')
                            .map(|n| self.pos + n);
                        match after_hashes.map(|i| self.b[i]) {
                            Some(b'"') => {
                                self.skip_raw(start)?;
                                Kind::Literal
                            }
                            Some(c) if ident == "r" && is_ident_start(c) => {
                                // Raw identifier `r#name`.
                                self.pos += 1;
                                while self.peek(0).is_some_and(is_ident_continue) {
                                    self.pos += 1;
                                }
                                Kind::Ident
                            }
                            _ => Kind::Ident,
                        }
                    } else if matches!(ident, "b" | "c") && next == Some(b'"') {
                        self.pos += 1;
                        self.skip_quoted(start)?;
                        Kind::Literal
                    } else if ident == "b" && next == Some(b'\'') {
                        self.pos += 1;
                        self.skip_char(start)?;
                        Kind::Literal
                    } else {
                        Kind::Ident
                    }
                }
                c if c.is_ascii_digit() => {
                    self.pos += 1;
                    while let Some(c) = self.peek(0) {
                        let fraction =
                            c == b'.' && self.peek(1).is_some_and(|d| d.is_ascii_digit());
                        if is_ident_continue(c) || fraction {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                    Kind::Literal
                }
                b'{' | b'(' | b'[' => {
                    self.pos += 1;
                    Kind::Open(c)
                }
                b'}' | b')' | b']' => {
                    self.pos += 1;
                    Kind::Close(c)
                }
                _ => {
                    self.pos += 1;
                    Kind::Punct(c)
                }
            };
            out.push(Token {
                kind,
                start,
                end: self.pos.min(self.b.len()),
            });
        }
        Ok(out)
    }
}

/// The tokens of `src`, without comments and whitespace (a string, char or
/// number literal is one token).
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ScanError> {
    Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
    }
    .tokens()
}

/// For every delimiter token, the index of its partner.
pub(crate) fn match_delimiters(
    src: &str,
    tokens: &[Token],
) -> Result<Vec<Option<usize>>, ScanError> {
    let mut partner = vec![None; tokens.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        match tok.kind {
            Kind::Open(_) => stack.push(i),
            Kind::Close(close) => {
                let Some(open) = stack.pop() else {
                    return Err(ScanError {
                        line: line_of(src, tok.start),
                        message: "unmatched closing delimiter".into(),
                    });
                };
                let expected = match tokens[open].kind {
                    Kind::Open(b'{') => b'}',
                    Kind::Open(b'(') => b')',
                    _ => b']',
                };
                if close != expected {
                    return Err(ScanError {
                        line: line_of(src, tok.start),
                        message: "mismatched delimiter".into(),
                    });
                }
                partner[open] = Some(i);
                partner[i] = Some(open);
            }
            _ => {}
        }
    }
    if let Some(open) = stack.pop() {
        return Err(ScanError {
            line: line_of(src, tokens[open].start),
            message: "unclosed delimiter".into(),
        });
    }
    Ok(partner)
}

/// Every `SR-AREA-NNN`-shaped ID in `text`, with byte offsets. An ID is `SR-`,
/// an upper-case area, `-` and digits, not glued to surrounding word
/// characters. Any digit count matches, so malformed IDs are reported as
/// unknown rather than ignored.
pub fn find_ids(text: &str) -> Vec<(String, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("SR-") {
        let at = from + rel;
        from = at + 3;
        if at > 0 && (is_ident_continue(b[at - 1]) || b[at - 1] == b'-') {
            continue;
        }
        let mut j = at + 3;
        let area_start = j;
        while j < b.len()
            && (b[j].is_ascii_uppercase() || (j > area_start && b[j].is_ascii_digit()))
        {
            j += 1;
        }
        if j == area_start || b.get(j) != Some(&b'-') {
            continue;
        }
        j += 1;
        let num_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == num_start || b.get(j).is_some_and(|c| is_ident_continue(*c)) {
            continue;
        }
        out.push((text[at..j].to_string(), at));
    }
    out
}

/// IDs a function name spells in snake case: `…sr_env_003…` → `SR-ENV-003`.
pub fn ids_in_name(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('_').collect();
    let mut out = Vec::new();
    for k in 0..parts.len().saturating_sub(2) {
        let (sr, area, num) = (parts[k], parts[k + 1], parts[k + 2]);
        if sr.eq_ignore_ascii_case("sr")
            && !area.is_empty()
            && area.bytes().all(|c| c.is_ascii_alphabetic())
            && !num.is_empty()
            && num.bytes().all(|c| c.is_ascii_digit())
        {
            out.push(format!("SR-{}-{}", area.to_ascii_uppercase(), num));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_with_word_boundaries() {
        let ids: Vec<String> =
            find_ids("SR-ENV-003, xSR-ENV-004 SR-ENV-005a (SR-A1-7) SR-… SR-AREA-NNN -SR-X-1")
                .into_iter()
                .map(|(id, _)| id)
                .collect();
        assert_eq!(ids, ["SR-ENV-003", "SR-A1-7"]);
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(ids_in_name("sr_env_003_refuses_rate"), ["SR-ENV-003"]);
        assert_eq!(
            ids_in_name("covers_sr_rx_001_and_sr_rx_002"),
            ["SR-RX-001", "SR-RX-002"]
        );
        assert!(ids_in_name("sr_env").is_empty());
        assert!(ids_in_name("srx_env_003").is_empty());
    }

    #[test]
    fn unterminated_input_is_an_error_with_line() {
        let lex = |src: &str| tokenize(src).and_then(|t| match_delimiters(src, &t));
        let err = lex("fn a() {}\n/* open").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(lex("fn a() { \"x }").is_err());
        assert!(lex("fn a() { ( }").is_err());
    }
}
