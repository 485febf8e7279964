//! Flag values that several subcommands share (the command line, `skiff
//! lab`'s plan of processes, the benchmarks), kept apart from `cli` so that
//! those modules can read them without importing each other.

/// Which container runtime a kubelet runs pods with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeName {
    /// containerd when its socket is reachable and the user is root, else process.
    Auto,
    /// Real containers through containerd and runc.
    Containerd,
    /// Plain child processes, no isolation, no images.
    Process,
    /// Simulated containers that run nothing (for scale tests).
    Hollow,
}

/// Parses a duration as Kubernetes' flags write one: a number and a unit
/// (`ms`, `s`, `m`, `h`), such as `15s` or `500ms`; a bare `0` too, as Go's
/// `time.ParseDuration` takes it.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?} has an unknown unit {unit:?}")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}
