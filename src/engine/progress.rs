//! Progress on stderr: a bar on a terminal, sparse plain lines when not a TTY or under CI.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Option<Instant>>,
    /// When the running spec started (elapsed and ETA of the plain lines).
    started: Mutex<Instant>,
    quiet: bool,
    /// The running spec's `${env:…}` values, redacted from every line.
    secrets: Mutex<Vec<String>>,
}

impl Progress {
    /// A bar when stderr is a terminal and `CI` is unset; otherwise line-oriented.
    pub fn auto(quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = (tty && !quiet).then(|| {
            let b = indicatif::ProgressBar::new(1000);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix:.bold} [{bar:30}] {elapsed} (ETA {eta}) {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            last_line: Mutex::new(None),
            started: Mutex::new(Instant::now()),
            quiet,
            secrets: Mutex::new(Vec::new()),
        }
    }

    /// Silent progress (tests, `--quiet`).
    pub fn silent() -> Progress {
        Progress {
            bar: None,
            last_line: Mutex::new(None),
            started: Mutex::new(Instant::now()),
            quiet: true,
            secrets: Mutex::new(Vec::new()),
        }
    }

    /// The values to redact from the lines of the spec about to run.
    pub fn set_secrets(&self, secrets: &[String]) {
        *self.secrets.lock().unwrap_or_else(|e| e.into_inner()) = secrets.to_vec();
    }

    fn redact(&self, line: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        crate::report::results::redact(line, &secrets)
    }

    /// Start a new spec.
    pub fn start(&self, prefix: &str) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let prefix = &self.redact(prefix);
        if let Some(b) = &self.bar {
            b.set_prefix(prefix.to_string());
            b.set_position(0);
            b.set_message("");
        } else if !self.quiet {
            eprintln!("perfspec: {prefix}");
        }
        *self.last_line.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Report progress: a fraction in 0..=1 (or `None` when unknown) and a short message.
    /// Plain output prints at most one line every 5 seconds.
    pub fn update(&self, fraction: Option<f64>, message: &str) {
        let message = &self.redact(message);
        if let Some(b) = &self.bar {
            if let Some(f) = fraction {
                b.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
            }
            b.set_message(message.to_string());
            return;
        }
        if self.quiet {
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            return;
        }
        *last = Some(Instant::now());
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            .as_secs_f64();
        match fraction {
            Some(f) => eprintln!(
                "perfspec:   {:>3.0}% {} {message}",
                f * 100.0,
                times(elapsed, f)
            ),
            None => eprintln!("perfspec:   {message}"),
        }
    }

    /// A line that must be seen (a spec finished); clears the bar around it.
    pub fn println(&self, line: &str) {
        let line = &self.redact(line);
        match &self.bar {
            Some(b) => b.println(line),
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `12s, ~30s left` (the left part once a tenth is done, from the pace so far).
fn times(elapsed: f64, fraction: f64) -> String {
    let clock = |s: f64| {
        let s = s.max(0.0).round() as u64;
        if s >= 3600 {
            format!("{}h{:02}m", s / 3600, s % 3600 / 60)
        } else if s >= 60 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{s}s")
        }
    };
    if (0.1..1.0).contains(&fraction) {
        let left = elapsed * (1.0 - fraction) / fraction;
        format!("{}, ~{} left —", clock(elapsed), clock(left))
    } else {
        format!("{} —", clock(elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::times;

    #[test]
    fn elapsed_and_time_left() {
        assert_eq!(times(12.0, 0.5), "12s, ~12s left —");
        assert_eq!(times(3.0, 0.05), "3s —");
        assert_eq!(times(90.0, 0.75), "1m30s, ~30s left —");
        assert_eq!(times(4000.0, 1.0), "1h06m —");
    }
}
