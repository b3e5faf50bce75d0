//! Process exit codes (DESIGN §1). With several specs the worst wins: 130 (143, 129) > 2 > 3 >
//! 1 > 0.

/// Every SLO passed (warnings allowed).
pub const SUCCESS: i32 = 0;
/// At least one SLO with severity `fail` failed.
pub const SLO_FAILED: i32 = 1;
/// A spec is invalid, or the command line is wrong.
pub const INVALID: i32 = 2;
/// A backend could not start (no verdict): target never ready, a server binary missing, …
pub const BACKEND_UNAVAILABLE: i32 = 3;
/// Nothing matched the selection.
pub const NOTHING_SELECTED: i32 = 4;
/// `perfspec merge`: a shard is missing or repeated, ran another version of a spec, or did
/// not run at the same time as the others; nothing was judged.
pub const INCOMPLETE: i32 = 5;
/// Interrupted (SIGINT, Ctrl-C): results so far and reports were still written.
pub const INTERRUPTED: i32 = 130;
/// Terminated (SIGTERM: `timeout`, a CI job's cancel, Kubernetes, systemd): handled like
/// Ctrl-C — results so far and reports were still written — and exits 128 + 15, the code
/// those callers expect of a terminated process.
pub const TERMINATED: i32 = 143;
/// Hung up (SIGHUP: the terminal went away): handled like Ctrl-C; exits 128 + 1.
pub const HANGUP: i32 = 129;

/// The exit code of a run stopped by signal `sig` (SIGINT, SIGTERM or SIGHUP).
pub fn for_signal(sig: i32) -> i32 {
    match sig {
        libc::SIGTERM => TERMINATED,
        libc::SIGHUP => HANGUP,
        _ => INTERRUPTED,
    }
}

/// How bad an exit code is, for "the worst wins".
fn rank(code: i32) -> u8 {
    match code {
        INTERRUPTED | TERMINATED | HANGUP => 6,
        INVALID | INCOMPLETE => 5,
        BACKEND_UNAVAILABLE => 4,
        SLO_FAILED => 3,
        NOTHING_SELECTED => 2,
        SUCCESS => 0,
        _ => 1,
    }
}

/// The worse of two exit codes.
pub fn worst(a: i32, b: i32) -> i32 {
    if rank(b) > rank(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_follows_the_documented_order() {
        assert_eq!(worst(SUCCESS, SLO_FAILED), SLO_FAILED);
        assert_eq!(worst(SLO_FAILED, BACKEND_UNAVAILABLE), BACKEND_UNAVAILABLE);
        assert_eq!(worst(INVALID, BACKEND_UNAVAILABLE), INVALID);
        assert_eq!(worst(INTERRUPTED, INVALID), INTERRUPTED);
        assert_eq!(worst(SUCCESS, SUCCESS), SUCCESS);
        assert_eq!(worst(TERMINATED, INVALID), TERMINATED);
    }

    #[test]
    fn signals_map_to_128_plus_their_number() {
        assert_eq!(for_signal(libc::SIGTERM), 128 + libc::SIGTERM);
        assert_eq!(for_signal(libc::SIGHUP), 128 + libc::SIGHUP);
        assert_eq!(for_signal(libc::SIGINT), INTERRUPTED);
        assert_eq!(INTERRUPTED, 128 + libc::SIGINT);
    }
}
