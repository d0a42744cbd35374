//! Upstream's label selector lexer: identifiers, keywords (`in`, `notin`) and operator symbols.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The literal holds upstream's error text.
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the whole input into tokens, ending with `EndOfString`.
pub fn scan(s: &str) -> Vec<(Token, String)> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut items = Vec::new();
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos >= bytes.len() {
            items.push((Token::EndOfString, String::new()));
            return items;
        }
        let item = if is_special(bytes[pos]) {
            special(s, &mut pos)
        } else {
            identifier(s, &mut pos)
        };
        items.push(item);
    }
}

fn identifier(s: &str, pos: &mut usize) -> (Token, String) {
    let bytes = s.as_bytes();
    let start = *pos;
    while *pos < bytes.len() && !is_special(bytes[*pos]) && !is_whitespace(bytes[*pos]) {
        *pos += 1;
    }
    // Boundaries fall on ASCII bytes, so the slice is valid UTF-8.
    let lit = s[start..*pos].to_string();
    match keyword(&lit) {
        Some(tok) => (tok, lit),
        None => (Token::Identifier, lit),
    }
}

/// Reads the longest run of symbol characters that still forms a known operator.
fn special(s: &str, pos: &mut usize) -> (Token, String) {
    let bytes = s.as_bytes();
    let start = *pos;
    let mut last: Option<(Token, usize)> = None;
    while *pos < bytes.len() && is_special(bytes[*pos]) {
        let candidate = &s[start..*pos + 1];
        match keyword(candidate) {
            Some(tok) => last = Some((tok, *pos + 1)),
            None if last.is_some() => break,
            None => {}
        }
        *pos += 1;
    }
    match last {
        Some((tok, end)) => {
            *pos = end;
            (tok, s[start..end].to_string())
        }
        None => (
            Token::Error,
            format!("error expected: keyword found '{}'", &s[start..*pos]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_split_greedily() {
        let toks: Vec<Token> = scan("a!=b,c==d,!e,f in (g)")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            toks,
            vec![
                Token::Identifier,
                Token::NotEquals,
                Token::Identifier,
                Token::Comma,
                Token::Identifier,
                Token::DoubleEquals,
                Token::Identifier,
                Token::Comma,
                Token::DoesNotExist,
                Token::Identifier,
                Token::Comma,
                Token::Identifier,
                Token::In,
                Token::OpenPar,
                Token::Identifier,
                Token::ClosedPar,
                Token::EndOfString,
            ]
        );
    }
}
