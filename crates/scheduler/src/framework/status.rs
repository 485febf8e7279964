//! The outcome of one plugin at one extension point: kube-scheduler's
//! `framework.Status`, a code with reasons and the plugin that gave it.

use std::borrow::Cow;
use std::fmt;

/// One reason: most are constants (`Insufficient cpu` is not, so it is
/// owned), and a constant costs no allocation on the Filter path, where a
/// cycle rejects thousands of nodes.
pub type Reason = Cow<'static, str>;

/// What a plugin decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The pod may go on (or fits the node).
    Success,
    /// The pod does not fit now, but preempting pods on the node might help.
    Unschedulable,
    /// The pod does not fit, and preemption would not change that.
    UnschedulableAndUnresolvable,
    /// Something went wrong that is not the pod's fault.
    Error,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore only):
    /// its Filter or Score is skipped this cycle.
    Skip,
}

/// A plugin's verdict with its human-readable reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<Reason>,
    plugin: &'static str,
}

impl Status {
    /// Success, with nothing to say.
    pub fn success() -> Status {
        Status::new(Code::Success, Vec::new())
    }

    /// A status with a code and reasons.
    pub fn new(code: Code, reasons: Vec<Reason>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    /// `Unschedulable` with one reason.
    pub fn unschedulable(reason: impl Into<Reason>) -> Status {
        Status::new(Code::Unschedulable, vec![reason.into()])
    }

    /// `UnschedulableAndUnresolvable` with one reason.
    pub fn unresolvable(reason: impl Into<Reason>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, vec![reason.into()])
    }

    /// `Error` with one reason.
    pub fn error(reason: impl Into<Reason>) -> Status {
        Status::new(Code::Error, vec![reason.into()])
    }

    /// `Skip`.
    pub fn skip() -> Status {
        Status::new(Code::Skip, Vec::new())
    }

    /// Names the plugin that gave this status.
    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The reasons, one per failed check.
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons
    }

    /// The plugin that gave this status ("" when none did).
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// Whether the code is Success.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// Whether the pod was rejected (either unschedulable code).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reasons.join(", "))
    }
}
