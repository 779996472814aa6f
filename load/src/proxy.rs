//! A TCP proxy on loopback for the fault scenarios:
//!
//! - in front of PostgreSQL it can be **cut**: every open connection is closed and
//!   the port stops listening (a connect is refused), as when the database server
//!   stops; **restored**, it listens again;
//! - in front of the service it can **drop responses**: for a share of the
//!   connections the request goes through, the service commits and answers, and
//!   the client's connection is closed before it hears a byte of the answer.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    /// Percentage of connections whose responses are dropped.
    drop_percent: AtomicU32,
    pub dropped: AtomicU64,
    cut: AtomicBool,
    listener: Mutex<Option<JoinHandle<()>>>,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    /// Listen on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Arc<Proxy>> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the proxy")?;
        let p = Arc::new(Proxy {
            addr: l.local_addr()?,
            upstream,
            drop_percent: AtomicU32::new(0),
            dropped: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            listener: Mutex::new(None),
            conns: Mutex::new(Vec::new()),
        });
        p.listen(l);
        Ok(p)
    }

    fn listen(self: &Arc<Self>, l: TcpListener) {
        let me = self.clone();
        let h = tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                if me.cut.load(Ordering::SeqCst) {
                    continue;
                }
                let drop =
                    rand::rng().random_range(0..100) < me.drop_percent.load(Ordering::Relaxed);
                let m = me.clone();
                let h = tokio::spawn(async move { m.serve(client, drop).await });
                if let Ok(mut c) = me.conns.lock() {
                    c.retain(|h| !h.is_finished());
                    c.push(h);
                }
            }
        });
        if let Ok(mut g) = self.listener.lock() {
            *g = Some(h);
        }
    }

    async fn serve(&self, mut client: TcpStream, drop: bool) {
        let Ok(mut up) = TcpStream::connect(self.upstream).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = up.set_nodelay(true);
        if !drop {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            return;
        }
        // Forward the request; as soon as the answer starts, hang up on the client.
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = up.split();
        let mut buf = [0u8; 8192];
        let to_server = async {
            loop {
                match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if uw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        let mut first = [0u8; 1];
        let answered = ur.read(&mut first);
        tokio::select! {
            _ = to_server => {}
            r = answered => {
                if matches!(r, Ok(n) if n > 0) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let _ = cw.shutdown().await;
    }

    pub fn set_drop_percent(&self, p: u32) {
        self.drop_percent.store(p.min(100), Ordering::Relaxed);
    }

    /// Close every connection and stop listening.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.listener.lock()
            && let Some(h) = g.take()
        {
            h.abort();
        }
        if let Ok(mut c) = self.conns.lock() {
            for h in c.drain(..) {
                h.abort();
            }
        }
    }

    /// Listen again on the same port.
    pub async fn restore(self: &Arc<Self>) -> Result<()> {
        let l = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("binding the proxy again on {}", self.addr))?;
        self.cut.store(false, Ordering::SeqCst);
        self.listen(l);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forwards_drops_cuts_and_restores() {
        // An echo server upstream.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let up = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let p = Proxy::start(up).await.unwrap();
        let echo = |addr| async move {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"ping").await?;
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await?;
            anyhow::Ok(b)
        };
        assert_eq!(&echo(p.addr).await.unwrap(), b"ping");
        p.set_drop_percent(100);
        assert!(echo(p.addr).await.is_err(), "the answer must be dropped");
        assert_eq!(p.dropped.load(Ordering::Relaxed), 1);
        p.set_drop_percent(0);
        p.cut();
        tokio::task::yield_now().await;
        assert!(echo(p.addr).await.is_err(), "a cut proxy must not forward");
        p.restore().await.unwrap();
        assert_eq!(&echo(p.addr).await.unwrap(), b"ping");
    }
}
