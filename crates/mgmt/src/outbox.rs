//! One management client's outgoing bytes: a bounded buffer that replies and
//! notifications are written into, and the writer task that sends it.
//!
//! Notifications are formatted straight into the buffer (no message is allocated on its
//! own) and dropped — and counted — when the buffer holds [`CAPACITY`] bytes already;
//! the count is told to the client after the next write that gets through
//! ([`crate::notify::dropped`]). Replies wait for room instead, so a client that sends
//! commands and reads nothing stops being read itself.
//!
//! The writer sends notifications in batches: once a notification is waiting it lets
//! more gather for [`LINGER`] before writing them all with one write. With sessions
//! coming and going by thousands per second a client is sent four notifications per
//! session, and one wake-up and one write(2) each cost the proxy more than the
//! sessions' own logging (docs/PERFORMANCE.md, "Operators"). A reply ends the wait at
//! once, so answers never linger. Everything goes out in the order it was written.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use crate::notify;

/// Bytes waiting for a client beyond which its notifications are dropped and replies
/// wait. With the kernel's send buffer ([`crate::serve`]), what a client that stops
/// reading can hold up. A session sends a client about 1.4 KB of notifications
/// (`>CLIENT:` blocks, a `>LOG:` line): at 6,000 sessions a second this is what comes
/// in 120 ms, room for a client that is not scheduled for a while on a busy machine.
pub const CAPACITY: usize = 1024 * 1024;

/// How long notifications gather before they are written.
pub const LINGER: Duration = Duration::from_millis(20);

#[derive(Default)]
struct State {
    /// What waits to be written, in order.
    buf: String,
    /// Notifications dropped since the last report to the client.
    dropped: u64,
    /// A reply waits: write now.
    urgent: bool,
    /// No more will be written: send what waits, then close.
    closing: bool,
    /// The writer has ended (the connection is gone).
    gone: bool,
}

/// The writing side of a client's buffer, shared by the client's task, its log
/// subscription and the writer task.
#[derive(Clone)]
pub struct Outbox(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    /// Something waits (or the box closes): wakes the writer.
    ready: Notify,
    /// A reply waits: ends the writer's linger.
    urgent: Notify,
    /// The writer took the buffer: wakes a reply waiting for room.
    room: Notify,
}

impl Outbox {
    /// A new box and the task that writes it to `wr` (spawn it).
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(
        wr: W,
    ) -> (Self, impl std::future::Future<Output = ()> + Send) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            urgent: Notify::new(),
            room: Notify::new(),
        });
        let writer = write_loop(wr, Arc::clone(&shared));
        (Self(shared), writer)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a notification with `write` (appending to the buffer it is given), or
    /// counts it as dropped when the buffer is full. False once the connection is gone.
    pub fn notify_with(&self, write: impl FnOnce(&mut String)) -> bool {
        let mut st = self.lock();
        if st.gone || st.closing {
            return false;
        }
        if st.buf.len() >= CAPACITY {
            st.dropped += 1;
            return true;
        }
        let was_empty = st.buf.is_empty();
        write(&mut st.buf);
        drop(st);
        if was_empty {
            self.0.ready.notify_one();
        }
        true
    }

    /// [`Self::notify_with`] for a text already made.
    pub fn notify(&self, text: &str) -> bool {
        self.notify_with(|buf| buf.push_str(text))
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts `n` notifications as dropped (missed before they reached the box).
    pub fn count_dropped(&self, n: u64) {
        self.lock().dropped += n;
    }

    /// Queues a reply, waiting while the buffer is full; it is written at once. False
    /// once the connection is gone.
    pub async fn reply(&self, text: &str) -> bool {
        loop {
            let room = self.0.room.notified();
            {
                let mut st = self.lock();
                if st.gone || st.closing {
                    return false;
                }
                if st.buf.len() < CAPACITY {
                    st.buf.push_str(text);
                    st.urgent = true;
                    drop(st);
                    self.0.ready.notify_one();
                    self.0.urgent.notify_one();
                    return true;
                }
            }
            room.await;
        }
    }

    /// Nothing more will be written: the writer sends what waits, then closes.
    pub fn close(&self) {
        self.lock().closing = true;
        self.0.ready.notify_one();
        self.0.urgent.notify_one();
    }
}

/// Writes the box's buffer as it fills; after each write (the client read) tells the
/// client what it missed.
async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, shared: Arc<Shared>) {
    let lock = || shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    loop {
        let (waiting, urgent, closing) = {
            let st = lock();
            (!st.buf.is_empty(), st.urgent, st.closing)
        };
        if !waiting && !closing {
            shared.ready.notified().await;
            continue;
        }
        if !urgent && !closing {
            // Let more notifications gather; a reply or the close cuts it short (a wake
            // left over from a reply already written does not).
            let until = tokio::time::Instant::now() + LINGER;
            while tokio::time::timeout_at(until, shared.urgent.notified())
                .await
                .is_ok()
            {
                let st = lock();
                if st.urgent || st.closing {
                    break;
                }
            }
        }
        let (missed, closing) = {
            let mut st = lock();
            std::mem::swap(&mut st.buf, &mut out);
            st.urgent = false;
            (std::mem::take(&mut st.dropped), st.closing)
        };
        shared.room.notify_waiters();
        if missed > 0 {
            out.push_str(&notify::dropped(missed));
        }
        if !out.is_empty() && wr.write_all(out.as_bytes()).await.is_err() {
            break;
        }
        // A big reply's buffer is not kept for the notifications after it.
        if out.capacity() > CAPACITY {
            out = String::new();
        } else {
            out.clear();
        }
        if closing && lock().buf.is_empty() {
            let _ = wr.shutdown().await;
            break;
        }
    }
    lock().gone = true;
    shared.room.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn everything_arrives_in_order_and_the_close_ends_the_stream() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (outbox, writer) = Outbox::new(a);
        let writer = tokio::spawn(writer);
        assert!(outbox.notify(">ONE\r\n"));
        assert!(outbox.reply("REPLY\r\n").await);
        assert!(outbox.notify_with(|b| b.push_str(">TWO\r\n")));
        outbox.close();
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, ">ONE\r\nREPLY\r\n>TWO\r\n");
        writer.await.unwrap();
        assert!(!outbox.notify("late"));
    }

    // On tokio's paused clock, which moves only when every task waits on a timer: a
    // linger would show as LINGER of elapsed time, none shows as 0.
    #[tokio::test(start_paused = true)]
    async fn a_reply_is_written_without_waiting_for_the_linger() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (outbox, writer) = Outbox::new(a);
        let writer = tokio::spawn(writer);
        assert!(outbox.reply("SUCCESS: pid=1\r\n").await);
        let mut buf = [0u8; 64];
        let t0 = tokio::time::Instant::now();
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"SUCCESS: pid=1\r\n");
        assert_eq!(t0.elapsed(), Duration::ZERO);
        // A notification alone lingers.
        assert!(outbox.notify(">LOG:1,I,x\r\n"));
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b">LOG:1,I,x\r\n");
        assert!(t0.elapsed() >= LINGER);
        outbox.close();
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_box_drops_notifications_counts_them_and_tells_the_client() {
        // A pipe of 1 KiB that nobody reads until the box is full.
        let (a, mut b) = tokio::io::duplex(1024);
        let (outbox, writer) = Outbox::new(a);
        let writer = tokio::spawn(writer);
        let line = format!(">LOG:{}\r\n", "x".repeat(1000));
        let mut sent = 0;
        while outbox.lock().dropped == 0 {
            assert!(outbox.notify(&line));
            sent += 1;
            assert!(sent < 10 * CAPACITY / line.len(), "never full");
            tokio::task::yield_now().await;
        }
        let dropped = outbox.lock().dropped;
        outbox.close();
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        writer.await.unwrap();
        let kept = got.matches(">LOG:").count() as u64;
        assert_eq!(kept + dropped, sent as u64);
        assert!(got.contains(&format!(">INFO:{dropped} notification(s) dropped")));
    }
}
