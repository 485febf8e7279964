//! The label selector lexer and parser, a recursive descent over tokens as
//! apimachinery's `labels.Parse` reads a selector.
//!
//! The lexer splits at whitespace and the symbols `= ! ( ) , < >` (the longest
//! operator wins: `!=` over `!`); the parser then reads requirements separated
//! by commas. Whether `in` is an operator or a value depends on where it is
//! read, which is what [`Context`] says.

use super::{quote, Operator, Requirement};
use crate::names;

/// Parses a whole selector into its requirements, in the order written.
pub(super) fn parse(selector: &str) -> Result<Vec<Requirement>, String> {
    let mut parser = Parser {
        tokens: lex(selector),
        position: 0,
    };
    parser.parse()
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    End,
    OpenPar,
    ClosedPar,
    Comma,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    In,
    NotIn,
    Identifier(String),
}

impl Token {
    /// The text the token was read from, as the error messages quote it.
    fn literal(&self) -> &str {
        match self {
            Token::End => "",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::Not => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Identifier(s) => s,
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits a selector into tokens, ending with [`Token::End`].
fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = input;
    loop {
        rest = rest.trim_start_matches(is_whitespace);
        let Some(first) = rest.chars().next() else {
            tokens.push(Token::End);
            return tokens;
        };
        if is_special(first) {
            // The longest operator wins: `!=` over `!`, `==` over `=`.
            let (token, len) = if rest.starts_with("!=") {
                (Token::NotEquals, 2)
            } else if rest.starts_with("==") {
                (Token::DoubleEquals, 2)
            } else {
                let token = match first {
                    '=' => Token::Equals,
                    '!' => Token::Not,
                    '(' => Token::OpenPar,
                    ')' => Token::ClosedPar,
                    ',' => Token::Comma,
                    '>' => Token::GreaterThan,
                    _ => Token::LessThan,
                };
                (token, 1)
            };
            tokens.push(token);
            rest = &rest[len..];
        } else {
            let end = rest
                .find(|c| is_special(c) || is_whitespace(c))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            tokens.push(match word {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word.to_string()),
            });
            rest = &rest[end..];
        }
    }
}

/// Where a token is read: after a key `in`/`notin` are operators; where a
/// value is expected they are plain words.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn token_at(&self, position: usize, context: Context) -> Token {
        let token = self.tokens.get(position).cloned().unwrap_or(Token::End);
        match (context, token) {
            (Context::Values, Token::In) => Token::Identifier("in".into()),
            (Context::Values, Token::NotIn) => Token::Identifier("notin".into()),
            (_, token) => token,
        }
    }

    fn lookahead(&self, context: Context) -> Token {
        self.token_at(self.position, context)
    }

    fn consume(&mut self, context: Context) -> Token {
        let token = self.token_at(self.position, context);
        self.position += 1;
        token
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.lookahead(Context::Values) {
                Token::Identifier(_) | Token::Not => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    match self.consume(Context::Values) {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let next = self.lookahead(Context::Values);
                            if !matches!(next, Token::Identifier(_) | Token::Not) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    next.literal()
                                ));
                            }
                        }
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            ))
                        }
                    }
                }
                Token::End => return Ok(requirements),
                other => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let mut token = self.consume(Context::Values);
        let negated = token == Token::Not;
        if negated {
            token = self.consume(Context::Values);
        }
        let Token::Identifier(key) = token else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        let key_errs = names::qualified_name(&key);
        if !key_errs.is_empty() {
            // apimachinery validates the key with an empty field path, which prints as `<nil>`.
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                quote(&key),
                key_errs.join("; ")
            ));
        }
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        if matches!(self.lookahead(Context::Values), Token::End | Token::Comma) {
            return Requirement::new(&key, Operator::Exists, Vec::new());
        }
        let operator = match self.consume(Context::KeyAndOperator) {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                ))
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_value_set()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values)
    }

    /// `( a, b, … )`; empty entries are the empty value, `()` is `{""}`.
    fn parse_value_set(&mut self) -> Result<Vec<String>, String> {
        let open = self.consume(Context::Values);
        if open != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        match self.lookahead(Context::Values) {
            Token::ClosedPar => {
                self.consume(Context::Values);
                return Ok(vec![String::new()]);
            }
            Token::Identifier(_) | Token::Comma => {}
            other => {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    other.literal()
                ))
            }
        }
        let mut values = Vec::new();
        loop {
            match self.consume(Context::Values) {
                Token::Identifier(value) => {
                    values.push(value);
                    match self.lookahead(Context::Values) {
                        Token::Comma => {}
                        Token::ClosedPar => break,
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or ')'",
                                other.literal()
                            ))
                        }
                    }
                }
                Token::Comma => {
                    // A comma with nothing before or after it stands for the empty value.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead(Context::Values) {
                        Token::ClosedPar => {
                            values.push(String::new());
                            break;
                        }
                        Token::Comma => values.push(String::new()),
                        _ => {}
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        other.literal()
                    ))
                }
            }
        }
        let close = self.consume(Context::Values);
        if close != Token::ClosedPar {
            return Err(format!("found '{}', expected: ')'", close.literal()));
        }
        Ok(values)
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing means "".
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(Context::Values), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume(Context::Values) {
            Token::Identifier(value) => Ok(vec![value]),
            other => Err(format!("found '{}', expected: identifier", other.literal())),
        }
    }
}
