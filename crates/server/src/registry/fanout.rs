//! Session events fanned out to the registry's subscribers (the management clients): a
//! bounded queue per subscriber, filled by the sessions and taken whole by the
//! subscriber, a batch at a time.
//!
//! It replaces a `tokio::sync::broadcast` channel, whose send cost a session about 150
//! instructions per event on its own path (the slot's lock, the tail's lock, the
//! waiters' list taken out and put back on every send) and whose receive cost the
//! subscriber as much again per event. Here a session pays one lock and a push per
//! subscriber, and wakes a subscriber only when its queue was empty; a subscriber takes
//! every waiting event with one lock and a swap of two vectors (docs/PERFORMANCE.md,
//! "Operators").
//!
//! A subscriber whose queue is full misses the next events: they are counted and the
//! count comes with its next batch, as a broadcast channel's `Lagged` did.
//!
//! A subscriber gives the items it is done with back with its next take
//! ([`Subscription::exchange`]), and the senders drop a few of them at each send
//! ([`DROPS_PER_SEND`]). An event holds its session's entry, and the subscriber's is
//! often the last reference: dropped there, the entry's allocations (made on the
//! session's thread) would be freed on the subscriber's, and the allocator's per-thread
//! caches would fill on one side and run dry on the other, making every session's
//! allocations dearer (about 600 instructions per session,
//! docs/PERFORMANCE.md, "Operators"). What waits to be dropped is bounded
//! ([`DONE_MAX`]); beyond it, the subscriber drops its items itself.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// One sender side, any number of subscribers.
pub(crate) struct Fanout<T> {
    /// How many subscribers there are, read without the lock: a session nobody listens
    /// to pays one load per event.
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Items a subscriber's queue holds before the next are missed.
    capacity: usize,
    shared: Mutex<Shared<T>>,
}

struct Shared<T> {
    queues: Vec<Queue<T>>,
    /// Items the subscribers are done with, for the senders to drop.
    done: Vec<T>,
}

/// Items a send drops of those the subscribers are done with: as many as a session
/// sends events, with some room.
const DROPS_PER_SEND: usize = 4;

/// Items waiting to be dropped by the senders, at most.
const DONE_MAX: usize = 4096;

struct Queue<T> {
    id: u64,
    items: Vec<T>,
    missed: u64,
    wake: Arc<Notify>,
}

/// A subscriber's end: [`Subscription::ready`] waits for items, [`Subscription::take`]
/// takes them all. Dropping it unsubscribes.
pub struct Subscription<T> {
    fanout: Arc<Fanout<T>>,
    id: u64,
    wake: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Fanout<T> {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            capacity,
            shared: Mutex::new(Shared {
                queues: Vec::new(),
                done: Vec::new(),
            }),
        })
    }

    /// Gives each subscriber an item made by `make` (nothing is made when there is
    /// none).
    pub(crate) fn send(&self, mut make: impl FnMut() -> T) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut shared = lock(&self.shared);
        for q in shared.queues.iter_mut() {
            if q.items.len() >= self.capacity {
                q.missed += 1;
                continue;
            }
            if q.items.is_empty() {
                q.wake.notify_one();
            }
            q.items.push(make());
        }
        let mut done: [Option<T>; DROPS_PER_SEND] = std::array::from_fn(|_| None);
        for d in &mut done {
            *d = shared.done.pop();
            if d.is_none() {
                break;
            }
        }
        // Dropped here, after the lock.
        drop(shared);
        drop(done);
    }

    /// A new subscriber, which gets the items sent from now on.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Subscription<T> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let mut shared = lock(&self.shared);
        shared.queues.push(Queue {
            id,
            items: Vec::new(),
            missed: 0,
            wake: Arc::clone(&wake),
        });
        self.count.store(shared.queues.len(), Ordering::Relaxed);
        Subscription {
            fanout: Arc::clone(self),
            id,
            wake,
        }
    }
}

impl<T> Subscription<T> {
    /// Waits until items (or a count of missed ones) wait to be taken.
    pub async fn ready(&self) {
        loop {
            // A wake sent between this check and the wait below is kept by the
            // `Notify` (a permit), so none is lost.
            if self.waiting() {
                return;
            }
            self.wake.notified().await;
        }
    }

    fn waiting(&self) -> bool {
        let shared = lock(&self.fanout.shared);
        shared
            .queues
            .iter()
            .find(|q| q.id == self.id)
            .is_some_and(|q| !q.items.is_empty() || q.missed > 0)
    }

    /// Moves every waiting item, oldest first, to the end of `into` (with one lock, and
    /// no copy when `into` is empty); returns how many were missed since the last take.
    pub fn take(&self, into: &mut Vec<T>) -> u64 {
        self.exchange(&mut Vec::new(), into)
    }

    /// [`Self::take`], giving back `done`, the items of the last take that the
    /// subscriber is done with (left empty), for the senders to drop.
    pub fn exchange(&self, done: &mut Vec<T>, into: &mut Vec<T>) -> u64 {
        let mut shared = lock(&self.fanout.shared);
        let mine = if shared.done.len() + done.len() <= DONE_MAX {
            shared.done.append(done);
            None
        } else {
            Some(std::mem::take(done))
        };
        let missed = match shared.queues.iter_mut().find(|q| q.id == self.id) {
            Some(q) => {
                if into.is_empty() {
                    std::mem::swap(&mut q.items, into);
                } else {
                    into.append(&mut q.items);
                }
                std::mem::take(&mut q.missed)
            }
            None => 0,
        };
        // Too many wait to be dropped: these are dropped here, after the lock.
        drop(shared);
        drop(mine);
        missed
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let gone = {
            let mut shared = lock(&self.fanout.shared);
            let at = shared.queues.iter().position(|q| q.id == self.id);
            let gone = at.map(|i| shared.queues.swap_remove(i));
            self.fanout
                .count
                .store(shared.queues.len(), Ordering::Relaxed);
            gone
        };
        // Its items are dropped after the lock.
        drop(gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subscriber_gets_every_item_in_order_and_is_told_what_it_missed() {
        let f = Fanout::new(3);
        let mut made = 0;
        f.send(|| {
            made += 1;
            0
        });
        assert_eq!(made, 0, "nothing is made without subscribers");
        let a = f.subscribe();
        let b = f.subscribe();
        for i in 1..=5 {
            f.send(|| i);
        }
        let mut got = Vec::new();
        assert_eq!(a.take(&mut got), 2);
        assert_eq!(got, [1, 2, 3]);
        f.send(|| 6);
        got.clear();
        assert_eq!(a.take(&mut got), 0);
        assert_eq!(got, [6]);
        // What is taken is added after what `into` holds; b missed 4, 5 and 6.
        assert_eq!(b.take(&mut got), 3);
        assert_eq!(got, [6, 1, 2, 3]);
        drop(b);
        assert_eq!(f.count.load(Ordering::Relaxed), 1);
        drop(a);
        f.send(|| unreachable!("no subscriber is left"));
    }

    #[test]
    fn items_given_back_are_dropped_by_the_senders_a_few_at_a_time() {
        let f = Fanout::new(64);
        let s = f.subscribe();
        let item = Arc::new(());
        for _ in 0..10 {
            f.send(|| Arc::clone(&item));
        }
        let mut got = Vec::new();
        s.take(&mut got);
        assert_eq!(Arc::strong_count(&item), 11);
        let mut next = Vec::new();
        s.exchange(&mut got, &mut next);
        assert!(got.is_empty() && next.is_empty());
        assert_eq!(Arc::strong_count(&item), 11, "held until senders drop them");
        // Each send adds one to the queue and drops DROPS_PER_SEND given back.
        f.send(|| Arc::clone(&item));
        assert_eq!(Arc::strong_count(&item), 12 - DROPS_PER_SEND);
        f.send(|| Arc::clone(&item));
        f.send(|| Arc::clone(&item));
        assert_eq!(
            Arc::strong_count(&item),
            1 + 3,
            "only the queued ones are left"
        );
        drop(s);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[tokio::test]
    async fn ready_waits_for_an_item_and_misses_no_wake() {
        let f = Fanout::new(8);
        let s = f.subscribe();
        let sender = Arc::clone(&f);
        let waiter = tokio::spawn(async move {
            s.ready().await;
            let mut got = Vec::new();
            s.take(&mut got);
            got
        });
        tokio::task::yield_now().await;
        sender.send(|| 7);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(got, [7]);
        // Sent before anyone waits: ready returns at once.
        let s = f.subscribe();
        f.send(|| 8);
        tokio::time::timeout(std::time::Duration::from_secs(5), s.ready())
            .await
            .expect("ready at once");
    }
}
