//! Per-link delay: a loopback TCP relay that hands on every byte a fixed time after it
//! arrived, in both directions, without limiting throughput. A node dials the relay instead
//! of its peer; noise and yamux run through it unchanged.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running relay.
#[derive(Debug)]
pub struct DelayedLink {
    /// Where to connect to reach the target through the delay.
    pub listen: SocketAddr,
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (sender, receiver) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        for (arrived, chunk) in receiver {
            let due = arrived + delay;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if sender
                    .send((Instant::now(), buffer[..read].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

impl DelayedLink {
    /// Starts a relay on a free loopback port to `target` delaying by `delay`; it runs until
    /// the process exits.
    pub fn start(target: SocketAddr, delay: Duration) -> std::io::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0")?, target.to_string(), delay)
    }

    /// Relays every connection `listener` accepts to `target` (`host:port`, looked up at each
    /// connection, so a peer that restarts with a new address is still found), delaying by
    /// `delay`; it runs until the process exits.
    pub fn serve(listener: TcpListener, target: String, delay: Duration) -> std::io::Result<Self> {
        let listen = listener.local_addr()?;
        std::thread::Builder::new()
            .name(format!("delay-{}", listen.port()))
            .spawn(move || {
                for inbound in listener.incoming().flatten() {
                    let Ok(outbound) = TcpStream::connect(target.as_str()) else {
                        continue;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (Ok(inbound_copy), Ok(outbound_copy)) =
                        (inbound.try_clone(), outbound.try_clone())
                    else {
                        continue;
                    };
                    std::thread::spawn(move || pump(inbound, outbound, delay));
                    std::thread::spawn(move || pump(outbound_copy, inbound_copy, delay));
                }
            })?;
        Ok(Self { listen })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_intact_and_no_sooner_than_the_delay_each_way() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = echo.accept().unwrap();
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => stream.write_all(&buffer[..read]).unwrap(),
                }
            }
        });
        let delay = Duration::from_millis(50);
        let link = DelayedLink::start(target, delay).unwrap();
        let mut client = TcpStream::connect(link.listen).unwrap();
        let message: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let started = Instant::now();
        client.write_all(&message).unwrap();
        let mut echoed = vec![0u8; message.len()];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message);
        // There and back: at least twice the delay.
        assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());
    }
}
