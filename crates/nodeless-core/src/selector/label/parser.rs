//! Upstream's recursive-descent label selector parser, with its error messages.

use super::lexer::{scan, Token};
use super::{Operator, Requirement};
use crate::field::FieldError;
use crate::status::render_errors;
use std::collections::BTreeSet;

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// Whether `in`/`notin` are keywords (after a key) or plain values (everywhere else).
#[derive(Clone, Copy, PartialEq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn peek(&self, ctx: Context) -> (Token, &str) {
        // The scanner always ends with EndOfString and parsing stops there, so this stays in range.
        let last = self.items.len() - 1;
        let (tok, lit) = &self.items[self.position.min(last)];
        (in_context(*tok, ctx), lit)
    }

    fn next(&mut self, ctx: Context) -> (Token, String) {
        let (tok, lit) = self.peek(ctx);
        let out = (tok, lit.to_string());
        self.position += 1;
        out
    }
}

fn in_context(tok: Token, ctx: Context) -> Token {
    match tok {
        Token::In | Token::NotIn if ctx == Context::Values => Token::Identifier,
        other => other,
    }
}

/// Parses a whole selector into requirements (unsorted), or upstream's error text.
pub fn parse(s: &str) -> Result<Vec<Requirement>, String> {
    let mut p = Parser {
        items: scan(s),
        position: 0,
    };
    let mut reqs = Vec::new();
    loop {
        let (tok, lit) = p.peek(Context::Values);
        match tok {
            Token::Identifier | Token::DoesNotExist => {
                let r =
                    requirement(&mut p).map_err(|e| format!("unable to parse requirement: {e}"))?;
                reqs.push(r);
                let (t, l) = p.next(Context::Values);
                match t {
                    Token::EndOfString => return Ok(reqs),
                    Token::Comma => {
                        let (t2, l2) = p.peek(Context::Values);
                        if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                            return Err(format!("found '{l2}', expected: identifier after ','"));
                        }
                    }
                    _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                }
            }
            Token::EndOfString => return Ok(reqs),
            _ => {
                return Err(format!(
                    "found '{lit}', expected: !, identifier, or 'end of string'"
                ))
            }
        }
    }
}

fn requirement(p: &mut Parser) -> Result<Requirement, String> {
    let (key, inferred) = key_and_inferred_operator(p)?;
    if let Some(op) = inferred {
        return Requirement::new(&key, op, Vec::new()).map_err(|e| render_errors(&e));
    }
    let op = operator(p)?;
    let values = match op {
        Operator::In | Operator::NotIn => value_set(p)?,
        _ => exact_value(p)?,
    };
    Requirement::new(&key, op, values.into_iter().collect()).map_err(|e| render_errors(&e))
}

/// Reads `[!]key`; the operator is known already when the key stands alone.
fn key_and_inferred_operator(p: &mut Parser) -> Result<(String, Option<Operator>), String> {
    let (mut tok, mut lit) = p.next(Context::Values);
    let negated = tok == Token::DoesNotExist;
    if negated {
        (tok, lit) = p.next(Context::Values);
    }
    if tok != Token::Identifier {
        return Err(format!("found '{lit}', expected: identifier"));
    }
    let key_errs = super::is_qualified_name(&lit);
    if !key_errs.is_empty() {
        // Upstream validates here with a nil field path, which prints as `<nil>`.
        return Err(FieldError::invalid("<nil>", lit.as_str(), key_errs.join("; ")).to_string());
    }
    let (next, _) = p.peek(Context::Values);
    let alone = next == Token::EndOfString || next == Token::Comma;
    let op = match (negated, alone) {
        (true, _) => Some(Operator::DoesNotExist),
        (false, true) => Some(Operator::Exists),
        (false, false) => None,
    };
    Ok((lit, op))
}

fn operator(p: &mut Parser) -> Result<Operator, String> {
    let (tok, lit) = p.next(Context::KeyAndOperator);
    Ok(match tok {
        Token::In => Operator::In,
        Token::Equals => Operator::Equals,
        Token::DoubleEquals => Operator::DoubleEquals,
        Token::GreaterThan => Operator::GreaterThan,
        Token::LessThan => Operator::LessThan,
        Token::NotIn => Operator::NotIn,
        Token::NotEquals => Operator::NotEquals,
        _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
    })
}

/// `(a,b,c)`; empty members are the empty string, as upstream.
fn value_set(p: &mut Parser) -> Result<BTreeSet<String>, String> {
    let (tok, lit) = p.next(Context::Values);
    if tok != Token::OpenPar {
        return Err(format!("found '{lit}' expected: '('"));
    }
    let (tok, lit) = p.peek(Context::Values);
    let lit = lit.to_string();
    match tok {
        Token::Identifier | Token::Comma => {
            let set = identifiers(p)?;
            if p.next(Context::Values).0 != Token::ClosedPar {
                return Err(format!("found '{lit}', expected: ')'"));
            }
            Ok(set)
        }
        Token::ClosedPar => {
            p.next(Context::Values);
            Ok(BTreeSet::from([String::new()]))
        }
        _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
    }
}

fn identifiers(p: &mut Parser) -> Result<BTreeSet<String>, String> {
    let mut set = BTreeSet::new();
    loop {
        let (tok, lit) = p.next(Context::Values);
        match tok {
            Token::Identifier => {
                set.insert(lit);
                let (t2, l2) = p.peek(Context::Values);
                match t2 {
                    Token::Comma => continue,
                    Token::ClosedPar => return Ok(set),
                    _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                }
            }
            Token::Comma => {
                if set.is_empty() {
                    set.insert(String::new());
                }
                let (t2, _) = p.peek(Context::Values);
                if t2 == Token::ClosedPar {
                    set.insert(String::new());
                    return Ok(set);
                }
                if t2 == Token::Comma {
                    set.insert(String::new());
                }
            }
            _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
        }
    }
}

fn exact_value(p: &mut Parser) -> Result<BTreeSet<String>, String> {
    let (tok, _) = p.peek(Context::Values);
    if tok == Token::EndOfString || tok == Token::Comma {
        return Ok(BTreeSet::from([String::new()]));
    }
    let (tok, lit) = p.next(Context::Values);
    if tok == Token::Identifier {
        return Ok(BTreeSet::from([lit]));
    }
    Err(format!("found '{lit}', expected: identifier"))
}
