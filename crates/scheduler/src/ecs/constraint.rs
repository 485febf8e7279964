//! ECS placement constraints: `distinctInstance` (no two pods of the group on
//! one node) and `memberOf` (nodes whose attributes satisfy an expression of
//! the cluster query language, see `query`).

use serde::Deserialize;

use super::query::{Expression, QueryError};

/// One entry of `placementConstraints`, as ECS's API writes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum PlacementConstraintSpec {
    /// Each pod of the group on a different node.
    DistinctInstance,
    /// Only nodes that satisfy `expression`.
    MemberOf {
        /// A cluster query language expression.
        expression: String,
    },
}

/// A constraint ready to check nodes.
#[derive(Clone, Debug)]
pub enum PlacementConstraint {
    /// See [`PlacementConstraintSpec::DistinctInstance`].
    DistinctInstance,
    /// The parsed expression and its text (for messages).
    MemberOf(Expression, String),
}

impl PlacementConstraintSpec {
    /// Parses the expression of a memberOf constraint.
    pub fn compile(&self) -> Result<PlacementConstraint, QueryError> {
        match self {
            PlacementConstraintSpec::DistinctInstance => Ok(PlacementConstraint::DistinctInstance),
            PlacementConstraintSpec::MemberOf { expression } => Ok(PlacementConstraint::MemberOf(
                Expression::parse(expression)?,
                expression.clone(),
            )),
        }
    }
}
