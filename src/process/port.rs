//! Free loopback ports. A probe (bind port 0, read the port, close) races with every other
//! process on the machine — parallel tests above all — so starting a child on a probed port
//! is retried on a fresh one when the port turns out to be taken.

use std::future::Future;

/// A port on 127.0.0.1 the OS says is free now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The outcome of one try at starting something on a port.
pub enum PortTry<T, E> {
    /// Started.
    Done(T),
    /// Failed in a way a fresh port may fix (the address was in use): try again.
    Taken(E),
    /// Failed for good.
    Failed(E),
}

/// Run `attempt` on a fresh free port up to `attempts` times, until it does not answer
/// [`PortTry::Taken`]. `no_port` turns a failed probe into the caller's error. The error of
/// the last try is returned when every try found its port taken.
pub async fn on_free_port<T, E, F, Fut>(
    attempts: usize,
    no_port: impl Fn(std::io::Error) -> E,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(u16) -> Fut,
    Fut: Future<Output = PortTry<T, E>>,
{
    let mut last = None;
    for _ in 0..attempts.max(1) {
        let port = free_port().map_err(&no_port)?;
        match attempt(port).await {
            PortTry::Done(t) => return Ok(t),
            PortTry::Failed(e) => return Err(e),
            PortTry::Taken(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| no_port(std::io::Error::other("no attempt was made"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_and_not_zero() {
        let p = free_port().unwrap();
        assert_ne!(p, 0);
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    #[tokio::test]
    async fn a_taken_port_is_retried_on_a_fresh_one_and_failures_stop_at_once() {
        let mut seen = Vec::new();
        let r: Result<u16, String> = on_free_port(
            3,
            |e| e.to_string(),
            |p| {
                seen.push(p);
                let n = seen.len();
                async move {
                    if n < 3 {
                        PortTry::Taken(format!("try {n}: in use"))
                    } else {
                        PortTry::Done(p)
                    }
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), seen[2]);
        assert_eq!(seen.len(), 3);

        let mut tries = 0;
        let r: Result<(), String> = on_free_port(
            3,
            |e| e.to_string(),
            |_| {
                tries += 1;
                async { PortTry::Taken("in use".to_string()) }
            },
        )
        .await;
        assert_eq!(r.unwrap_err(), "in use");
        assert_eq!(tries, 3);

        let mut tries = 0;
        let r: Result<(), String> = on_free_port(
            3,
            |e| e.to_string(),
            |_| {
                tries += 1;
                async { PortTry::Failed("no such file".to_string()) }
            },
        )
        .await;
        assert_eq!(r.unwrap_err(), "no such file");
        assert_eq!(tries, 1);
    }
}
