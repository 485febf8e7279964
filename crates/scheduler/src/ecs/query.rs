//! Amazon ECS's cluster query language, over node labels: the expressions of
//! `memberOf` placement constraints.
//!
//! ```text
//! expression := or
//! or         := and (("||" | "or") and)*
//! and        := not (("&&" | "and") not)*
//! not        := ("!" | "not") not | "(" expression ")" | predicate
//! predicate  := "attribute:" NAME ( ("==" | "!=" | ">" | ">=" | "<" | "<=" | "=~" | "!~") VALUE
//!                                 | "exists" | "!exists"
//!                                 | ("in" | "!in") "[" VALUE ("," VALUE)* "]" )
//! VALUE      := a bare word, or text in single or double quotes
//! ```
//!
//! `attribute:NAME` reads the node label NAME; ECS's own attribute names are
//! mapped to Kubernetes' well-known labels (`ecs.availability-zone` →
//! `topology.kubernetes.io/zone`, `ecs.instance-type` →
//! `node.kubernetes.io/instance-type`, `ecs.os-type` → `kubernetes.io/os`,
//! `ecs.cpu-architecture` → `kubernetes.io/arch`). Comparisons are numeric
//! when both sides are numbers, else by string; `=~` and `!~` match the whole
//! value against a regular expression (`t2.*`). Errors carry the 0-based
//! character position where parsing stopped.
//!
//! # Caveats
//! ECS's `task:group` and `runningTasksCount` expressions are not supported.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// A parse error at a character position of the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// 0-based character offset of the error.
    pub position: usize,
    /// What was expected or found.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

/// A comparison of a node attribute.
#[derive(Clone, Debug)]
pub enum Predicate {
    /// `==`, `!=`, `>`, `>=`, `<`, `<=`.
    Compare(CompareOp, String),
    /// `=~` (true) or `!~` (false).
    Matches(Regex, bool),
    /// `exists` (true) or `!exists` (false).
    Exists(bool),
    /// `in` (true) or `!in` (false).
    In(Vec<String>, bool),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// A parsed expression.
#[derive(Clone, Debug)]
pub enum Expression {
    /// `attribute:NAME …`.
    Attribute(String, Predicate),
    /// `!e`.
    Not(Box<Expression>),
    /// `a && b`.
    And(Box<Expression>, Box<Expression>),
    /// `a || b`.
    Or(Box<Expression>, Box<Expression>),
}

/// Kubernetes' label for an ECS attribute name; other names are labels as they are.
pub fn label_for(attribute: &str) -> &str {
    match attribute {
        "ecs.availability-zone" => "topology.kubernetes.io/zone",
        "ecs.instance-type" => "node.kubernetes.io/instance-type",
        "ecs.os-type" => "kubernetes.io/os",
        "ecs.cpu-architecture" => "kubernetes.io/arch",
        other => other,
    }
}

impl Expression {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Expression, QueryError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            pos: 0,
        };
        let expression = parser.or()?;
        parser.skip_space();
        if parser.pos < parser.chars.len() {
            return Err(parser.error("expected && or || or the end of the expression"));
        }
        Ok(expression)
    }

    /// Whether a node with these labels satisfies the expression.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Expression::Not(e) => !e.matches(labels),
            Expression::And(a, b) => a.matches(labels) && b.matches(labels),
            Expression::Or(a, b) => a.matches(labels) || b.matches(labels),
            Expression::Attribute(name, predicate) => {
                let value = labels.get(label_for(name)).map(String::as_str);
                predicate.holds(value)
            }
        }
    }
}

impl Predicate {
    fn holds(&self, value: Option<&str>) -> bool {
        match self {
            Predicate::Exists(wanted) => value.is_some() == *wanted,
            Predicate::In(values, wanted) => {
                value.is_some_and(|v| values.iter().any(|x| x == v)) == *wanted
            }
            Predicate::Matches(regex, wanted) => {
                value.is_some_and(|v| regex.is_match(v)) == *wanted
            }
            Predicate::Compare(op, operand) => {
                let Some(value) = value else {
                    return *op == CompareOp::Ne;
                };
                let ordering = match (value.parse::<f64>(), operand.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                    _ => value.cmp(operand.as_str()),
                };
                match op {
                    CompareOp::Eq => ordering == Ordering::Equal,
                    CompareOp::Ne => ordering != Ordering::Equal,
                    CompareOp::Gt => ordering == Ordering::Greater,
                    CompareOp::Ge => ordering != Ordering::Less,
                    CompareOp::Lt => ordering == Ordering::Less,
                    CompareOp::Le => ordering != Ordering::Greater,
                }
            }
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> QueryError {
        QueryError {
            position: self.pos,
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    /// Consumes `token` if it comes next (after spaces); keywords must end at
    /// a word boundary.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        let end = self.pos + token.chars().count();
        let matches =
            end <= self.chars.len() && self.chars[self.pos..end].iter().copied().eq(token.chars());
        let keyword = token.chars().last().is_some_and(char::is_alphabetic);
        let boundary = !keyword
            || self
                .chars
                .get(end)
                .is_none_or(|c| !(c.is_alphanumeric() || *c == '_'));
        if matches && boundary {
            self.pos = end;
        }
        matches && boundary
    }

    fn or(&mut self) -> Result<Expression, QueryError> {
        let mut left = self.and()?;
        while self.eat("||") || self.eat("or") {
            left = Expression::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expression, QueryError> {
        let mut left = self.not()?;
        while self.eat("&&") || self.eat("and") {
            left = Expression::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expression, QueryError> {
        if self.eat("!") || self.eat("not") {
            return Ok(Expression::Not(Box::new(self.not()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.error("expected )"));
            }
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expression, QueryError> {
        if !self.eat("attribute:") {
            return Err(self.error("expected attribute:NAME, ! or ("));
        }
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| !c.is_whitespace() && !"=!<>()[],".contains(*c))
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected an attribute name after attribute:"));
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let predicate = self.operator()?;
        Ok(Expression::Attribute(name, predicate))
    }

    fn operator(&mut self) -> Result<Predicate, QueryError> {
        for (token, exists) in [("!exists", false), ("exists", true)] {
            if self.eat(token) {
                return Ok(Predicate::Exists(exists));
            }
        }
        for (token, wanted) in [("!in", false), ("in", true)] {
            if self.eat(token) {
                return Ok(Predicate::In(self.list()?, wanted));
            }
        }
        for (token, wanted) in [("=~", true), ("!~", false)] {
            if self.eat(token) {
                self.skip_space();
                let at = self.pos;
                let pattern = self.regex_value()?;
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| QueryError {
                    position: at,
                    message: format!("invalid regular expression {pattern:?}: {e}"),
                })?;
                return Ok(Predicate::Matches(regex, wanted));
            }
        }
        for (token, op) in [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            (">=", CompareOp::Ge),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            ("<", CompareOp::Lt),
        ] {
            if self.eat(token) {
                return Ok(Predicate::Compare(op, self.value()?));
            }
        }
        Err(self
            .error("expected an operator (==, !=, >, >=, <, <=, =~, !~, exists, !exists, in, !in)"))
    }

    fn list(&mut self) -> Result<Vec<String>, QueryError> {
        if !self.eat("[") {
            return Err(self.error("expected [ to start a list"));
        }
        let mut values = vec![self.value()?];
        while self.eat(",") {
            values.push(self.value()?);
        }
        if !self.eat("]") {
            return Err(self.error("expected , or ] in the list"));
        }
        Ok(values)
    }

    /// A regular expression: a quoted value, or a bare one that may hold
    /// balanced parentheses (`(m5|c5).*`).
    fn regex_value(&mut self) -> Result<String, QueryError> {
        if matches!(self.chars.get(self.pos), Some('\'' | '"')) {
            return self.value();
        }
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(&c) = self.chars.get(self.pos) {
            match c {
                c if c.is_whitespace() => break,
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected a regular expression"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn value(&mut self) -> Result<String, QueryError> {
        self.skip_space();
        match self.chars.get(self.pos).copied() {
            Some(quote @ ('\'' | '"')) => {
                let start = self.pos;
                self.pos += 1;
                let from = self.pos;
                while self.chars.get(self.pos).is_some_and(|c| *c != quote) {
                    self.pos += 1;
                }
                if self.pos >= self.chars.len() {
                    return Err(QueryError {
                        position: start,
                        message: "unterminated quoted value".into(),
                    });
                }
                let value = self.chars[from..self.pos].iter().collect();
                self.pos += 1;
                Ok(value)
            }
            _ => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| !c.is_whitespace() && !"()[],".contains(*c))
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.error("expected a value"));
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "node.kubernetes.io/instance-type".to_string(),
                "t2.micro".to_string(),
            ),
            (
                "topology.kubernetes.io/zone".to_string(),
                "eu-west-2a".to_string(),
            ),
            ("cores".to_string(), "8".to_string()),
        ])
    }

    #[test]
    fn each_operator_reads_node_labels() {
        for (expression, expected) in [
            ("attribute:node.kubernetes.io/instance-type =~ t2.*", true),
            ("attribute:node.kubernetes.io/instance-type =~ m5.*", false),
            ("attribute:node.kubernetes.io/instance-type !~ m5.*", true),
            ("attribute:ecs.instance-type == t2.micro", true),
            ("attribute:ecs.instance-type != t2.micro", false),
            ("attribute:cores > 4", true),
            ("attribute:cores >= 8", true),
            ("attribute:cores < 8", false),
            ("attribute:cores <= 8", true),
            ("attribute:cores > 10", false),
            ("attribute:gpu exists", false),
            ("attribute:gpu !exists", true),
            (
                "attribute:ecs.availability-zone in [eu-west-2a, eu-west-2b]",
                true,
            ),
            (
                "attribute:ecs.availability-zone !in [eu-west-2a, eu-west-2b]",
                false,
            ),
            ("attribute:cores == '8'", true),
            ("attribute:ecs.instance-type =~ (m5|t2).*", true),
            ("(attribute:ecs.instance-type =~ (m5|c5).*)", false),
        ] {
            let parsed =
                Expression::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(parsed.matches(&labels()), expected, "{expression}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_negates() {
        for (expression, expected) in [
            ("attribute:cores == 8 && attribute:gpu exists", false),
            ("attribute:gpu exists || attribute:cores == 8", true),
            (
                "attribute:gpu exists && attribute:cores == 1 || attribute:cores == 8",
                true,
            ),
            (
                "attribute:gpu exists && (attribute:cores == 1 || attribute:cores == 8)",
                false,
            ),
            ("!attribute:gpu exists", true),
            (
                "not (attribute:cores == 8 and attribute:gpu !exists)",
                false,
            ),
        ] {
            let parsed =
                Expression::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(parsed.matches(&labels()), expected, "{expression}");
        }
    }

    #[test]
    fn errors_name_the_position() {
        for (expression, position) in [
            ("attribute:zone", 14),
            ("attribute:zone ~= a", 15),
            ("zone == a", 0),
            ("attribute:zone == a &&", 22),
            ("attribute:zone in [a, b", 23),
            ("(attribute:zone exists", 22),
            ("attribute:zone =~ '(' ", 18),
            ("attribute:zone == a b", 20),
        ] {
            let error = Expression::parse(expression).expect_err(expression);
            assert_eq!(error.position, position, "{expression}: {error}");
        }
    }
}
