//! The SOCKS5 load generator. Every mode is bounded in count and time.
//!
//! ```text
//! loadgen serve ADDR                                  target server (until killed)
//! loadgen bulk  TARGET up|down STREAMS BYTES [PROXY]  bulk transfer; prints MB/s
//! loadgen rate  TARGET CONC SECONDS MAXCONN [PROXY]   CONNECT + 32-byte echo + close; prints conn/s p50 p99
//! loadgen hold  TARGET SESSIONS SECONDS [PROXY] [--echo-every MS] [--linger SECONDS]
//!                                                     open and hold sessions; prints "held N" then waits
//! ```
//!
//! `hold` keeps its sessions idle, or with `--echo-every MS` each one echoes 32 bytes
//! every MS milliseconds (spread evenly over the sessions), and prints after SECONDS
//! `echoed N, p50 X ms, p99 Y ms, max Z ms (E errors)`: relays that keep moving bytes
//! while they are held, and how long an echo took. `--linger S` keeps the sessions open
//! (idle) S seconds more before closing them, so that a runner can have the other end
//! close first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrosocks_bench::{command, connect, serve_target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        eprintln!("loadgen: missing or bad {what} (argument {i})");
        std::process::exit(2)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let code = rt.block_on(async {
        match args.get(1).map(String::as_str) {
            Some("serve") => {
                let l =
                    tokio::net::TcpListener::bind(arg::<SocketAddr>(&args, 2, "listen address"))
                        .await
                        .expect("bind");
                println!("serving {}", l.local_addr().expect("an address"));
                serve_target(l).await;
                0
            }
            Some("bulk") => bulk(&args).await,
            Some("rate") => rate(&args).await,
            Some("hold") => hold(&args).await,
            _ => {
                eprintln!("usage: loadgen serve|bulk|rate|hold …");
                2
            }
        }
    });
    std::process::exit(code);
}

async fn bulk(args: &[String]) -> i32 {
    let target: SocketAddr = arg(args, 2, "target");
    let up = arg::<String>(args, 3, "direction") == "up";
    let streams: u64 = arg(args, 4, "streams");
    let bytes: u64 = arg(args, 5, "bytes");
    let proxy: Option<SocketAddr> = args.get(6).and_then(|a| a.parse().ok());
    let per = bytes / streams;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        tasks.push(tokio::spawn(async move {
            let mut s = connect(proxy, target).await?;
            let buf = vec![0x5au8; 256 * 1024];
            if up {
                command(&mut s, b'U', per).await?;
                let mut left = per;
                while left > 0 {
                    let k = left.min(buf.len() as u64) as usize;
                    s.write_all(&buf[..k]).await?;
                    left -= k as u64;
                }
                let mut ack = [0u8; 1];
                s.read_exact(&mut ack).await?;
            } else {
                command(&mut s, b'D', per).await?;
                let mut buf = buf;
                let mut got = 0u64;
                loop {
                    let k = s.read(&mut buf).await?;
                    if k == 0 {
                        break;
                    }
                    got += k as u64;
                }
                if got != per {
                    return Err(std::io::Error::other(format!(
                        "short download: {got} of {per}"
                    )));
                }
            }
            Ok::<_, std::io::Error>(())
        }));
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("loadgen bulk: {e}");
                return 1;
            }
            Err(e) => {
                eprintln!("loadgen bulk: {e}");
                return 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{:.1} MB/s", (per * streams) as f64 / secs / 1e6);
    0
}

async fn rate(args: &[String]) -> i32 {
    let target: SocketAddr = arg(args, 2, "target");
    let conc: usize = arg(args, 3, "concurrency");
    let secs: f64 = arg(args, 4, "seconds");
    let max: u64 = arg(args, 5, "max connections");
    let proxy: Option<SocketAddr> = args.get(6).and_then(|a| a.parse().ok());
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (started, errors) = (Arc::clone(&started), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline && started.fetch_add(1, Ordering::Relaxed) < max {
                let t0 = Instant::now();
                let r = async {
                    let mut s = connect(proxy, target).await?;
                    command(&mut s, b'E', 32).await?;
                    s.write_all(&[7u8; 32]).await?;
                    let mut b = [0u8; 32];
                    s.read_exact(&mut b).await?;
                    Ok::<_, std::io::Error>(())
                }
                .await;
                match r {
                    Ok(()) => lat.push(t0.elapsed()),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{:.0} conn/s p50 {:.3} ms p99 {:.3} ms ({} ok, {} errors)",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.len(),
        errors.load(Ordering::Relaxed)
    );
    0
}

async fn hold(args: &[String]) -> i32 {
    let target: SocketAddr = arg(args, 2, "target");
    let n: usize = arg(args, 3, "sessions");
    let secs: u64 = arg(args, 4, "seconds");
    let proxy: Option<SocketAddr> = args.get(5).and_then(|a| a.parse().ok());
    let echo_every: Option<u64> = args
        .iter()
        .position(|a| a == "--echo-every")
        .map(|i| arg(args, i + 1, "echo interval (ms)"));
    let linger: u64 = args
        .iter()
        .position(|a| a == "--linger")
        .map_or(0, |i| arg(args, i + 1, "linger (s)"));
    let mut held = Vec::with_capacity(n);
    let mut batch = Vec::new();
    for i in 0..n {
        batch.push(tokio::spawn(async move {
            let mut s = connect(proxy, target).await?;
            // An echo session that stays open: idle after one byte, or echoing until
            // it closes.
            let len = if echo_every.is_some() { u64::MAX } else { 1 };
            command(&mut s, b'E', len).await?;
            s.write_all(b"x").await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            Ok::<_, std::io::Error>(s)
        }));
        if batch.len() == 50 || i + 1 == n {
            for t in batch.drain(..) {
                match t.await {
                    Ok(Ok(s)) => held.push(s),
                    other => {
                        eprintln!("loadgen hold: a session up to {i}: {other:?}");
                        return 1;
                    }
                }
            }
        }
    }
    println!("held {}", held.len());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let Some(every) = echo_every else {
        tokio::time::sleep_until((deadline + Duration::from_secs(linger)).into()).await;
        drop(held);
        return 0;
    };
    let every = Duration::from_millis(every.max(1));
    let count = held.len().max(1) as u32;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(held.len());
    for (i, mut s) in held.into_iter().enumerate() {
        let errors = Arc::clone(&errors);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let start = tokio::time::Instant::now() + every * i as u32 / count;
            let mut tick = tokio::time::interval_at(start, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut b = [0u8; 32];
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = tokio::time::sleep_until(deadline.into()) => break,
                }
                let t0 = Instant::now();
                let r = async {
                    s.write_all(&[7u8; 32]).await?;
                    s.read_exact(&mut b).await?;
                    Ok::<_, std::io::Error>(())
                }
                .await;
                match r {
                    Ok(()) => lat.push(t0.elapsed()),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            (lat, s)
        }));
    }
    let mut all = Vec::new();
    let mut open = Vec::new();
    for t in tasks {
        if let Ok((lat, s)) = t.await {
            all.extend(lat);
            open.push(s);
        }
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "echoed {}, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} errors)",
        all.len(),
        pct(0.50),
        pct(0.99),
        all.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        errors.load(Ordering::Relaxed)
    );
    tokio::time::sleep(Duration::from_secs(linger)).await;
    drop(open);
    0
}
