//! `--cascade`, `--grace-period`, `--now` and `--force` as DeleteOptions,
//! with kubectl's rules (`GetCascadingStrategy`, `DeleteOptions.Complete`).

use skiff_client::{DeleteParams, PropagationPolicy};

use crate::cli::DeleteArgs;
use crate::kubectl::Error;

/// What kubectl says when `--force` removes objects without a grace period.
const FORCE_WARNING: &str = "Warning: Immediate deletion does not wait for confirmation that the \
                             running resource has been terminated. The resource may continue to \
                             run on the cluster indefinitely.";

/// The DeleteOptions of one `skiff delete`, and the warnings to print first.
#[derive(Debug)]
pub(crate) struct Options {
    /// What goes to the server with each delete.
    pub params: DeleteParams,
    /// Lines for standard error, in kubectl's words.
    pub warnings: Vec<String>,
}

impl Options {
    /// The options `args` ask for, or kubectl's refusal.
    pub fn from_args(args: &DeleteArgs) -> Result<Options, Error> {
        let mut warnings = Vec::new();
        let (policy, warning) = cascade(&args.cascade)?;
        warnings.extend(warning);
        let grace = grace_period(args.grace_period, args.now, args.force)?;
        if grace == Some(0) {
            warnings.push(FORCE_WARNING.into());
        }
        Ok(Options {
            params: DeleteParams {
                propagation_policy: Some(policy),
                grace_period_seconds: grace,
                ..DeleteParams::default()
            },
            warnings,
        })
    }

    /// Whether objects go with no grace period (`pod "web" force deleted`).
    pub fn force_deleted(&self) -> bool {
        self.params.grace_period_seconds == Some(0)
    }
}

/// The propagation policy `--cascade=VALUE` means, and kubectl's warning for
/// the deprecated boolean spellings.
pub(crate) fn cascade(value: &str) -> Result<(PropagationPolicy, Option<String>), Error> {
    let deprecated = |instead: &str| {
        Some(format!(
            "warning: --cascade={value} is deprecated (boolean value) and can be replaced with \
             --cascade={instead}."
        ))
    };
    match value {
        "background" => Ok((PropagationPolicy::Background, None)),
        "foreground" => Ok((PropagationPolicy::Foreground, None)),
        "orphan" => Ok((PropagationPolicy::Orphan, None)),
        "true" => Ok((PropagationPolicy::Background, deprecated("background"))),
        "false" => Ok((PropagationPolicy::Orphan, deprecated("orphan"))),
        other => Err(Error::Usage(format!(
            "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
        ))),
    }
}

/// `gracePeriodSeconds`: none for the object's own default (-1), 1 for
/// `--now`, and 0 only with `--force` (a plain 0 becomes 1, so no pod is
/// removed before its node stops it by accident).
pub(crate) fn grace_period(seconds: i64, now: bool, force: bool) -> Result<Option<u32>, Error> {
    let mut seconds = seconds;
    if now {
        if seconds != -1 {
            return Err(Error::Usage(
                "--now and --grace-period cannot be specified together".into(),
            ));
        }
        seconds = 1;
    }
    if seconds == 0 && !force {
        seconds = 1;
    }
    if force && seconds < 0 {
        seconds = 0;
    }
    if seconds < 0 {
        return Ok(None);
    }
    u32::try_from(seconds)
        .map(Some)
        .map_err(|_| Error::Usage(format!("--grace-period {seconds} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_values_map_to_propagation_policies() {
        use PropagationPolicy::*;
        for (value, policy, warning) in [
            ("background", Background, None),
            ("foreground", Foreground, None),
            ("orphan", Orphan, None),
            (
                "true",
                Background,
                Some("warning: --cascade=true is deprecated (boolean value) and can be replaced with --cascade=background."),
            ),
            (
                "false",
                Orphan,
                Some("warning: --cascade=false is deprecated (boolean value) and can be replaced with --cascade=orphan."),
            ),
        ] {
            let (got, said) = cascade(value).unwrap();
            assert_eq!(format!("{got:?}"), format!("{policy:?}"), "{value}");
            assert_eq!(said.as_deref(), warning, "{value}");
        }
        assert_eq!(
            cascade("sideways").unwrap_err().to_string(),
            "error: invalid cascade value (sideways). Must be \"background\", \"foreground\", or \
             \"orphan\""
        );
    }

    #[test]
    fn grace_periods_follow_kubectls_rules() {
        for (seconds, now, force, expected) in [
            (-1, false, false, None),
            (30, false, false, Some(30)),
            (-1, true, false, Some(1)),
            (0, false, false, Some(1)),
            (0, false, true, Some(0)),
            (-1, false, true, Some(0)),
            (5, false, true, Some(5)),
        ] {
            assert_eq!(
                grace_period(seconds, now, force).unwrap(),
                expected,
                "{seconds} now={now} force={force}"
            );
        }
        assert_eq!(
            grace_period(5, true, false).unwrap_err().to_string(),
            "error: --now and --grace-period cannot be specified together"
        );
    }
}
