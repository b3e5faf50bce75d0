//! The burn runner behind the `flex` and `ndarray` quantize backends (feature `quantize`):
//! datasets, the MLP built at run time, schemes, tuning and the run itself.

pub mod data;
pub mod model;
pub mod qat;
pub mod run;
pub mod schemes;
pub mod tune;

pub use run::run;

/// Run `f`, turning a panic (burn reports many errors by panicking) into an error.
pub fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        format!("{what}: burn panicked: {msg}")
    })
}

/// A scheme or model name as a file name: anything but ASCII letters, digits, `-`, `_` and
/// `.` becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
