//! Sub-millisecond sleeps for latency and delays.
//!
//! tokio's timer rounds every deadline up to a whole millisecond and its
//! driver parks in whole milliseconds, so `tokio::time::sleep(5 ms)` took
//! 6.3–6.6 ms on average on a loaded 2-core machine with 32 requests in
//! flight: the fake itself, not the client, was then the bottleneck of a
//! benchmark (`tests/bench`). Here one process-wide thread keeps the
//! deadlines in a heap and waits on a condvar (a futex with a nanosecond
//! timeout), so each sleeper wakes within tens of microseconds of its
//! deadline. A sleep is never shorter than asked.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;

struct Entry {
    deadline: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    heap: BinaryHeap::new(),
    seq: 0,
});
static CHANGED: Condvar = Condvar::new();
/// Whether the timer thread runs (`false`: it could not be started).
static RUNNING: OnceLock<bool> = OnceLock::new();

fn queue() -> MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completes at `deadline` (within tens of µs), not before.
pub(crate) async fn sleep_until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    let running = *RUNNING.get_or_init(|| {
        std::thread::Builder::new()
            .name("fake-gitlab-timer".to_owned())
            .spawn(run)
            .is_ok()
    });
    if !running {
        tokio::time::sleep_until(deadline.into()).await;
        return;
    }
    let (wake, woken) = oneshot::channel();
    {
        let mut q = queue();
        q.seq += 1;
        let seq = q.seq;
        let earliest = q.heap.peek().is_none_or(|Reverse(e)| deadline < e.deadline);
        q.heap.push(Reverse(Entry { deadline, seq, wake }));
        if earliest {
            CHANGED.notify_one();
        }
    }
    let _ = woken.await;
}

/// The timer thread: wakes every sleeper whose deadline has passed, then
/// waits until the next deadline or a new, earlier one.
fn run() {
    let mut due = Vec::new();
    let mut q = queue();
    loop {
        let now = Instant::now();
        while q.heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
            if let Some(Reverse(e)) = q.heap.pop() {
                due.push(e.wake);
            }
        }
        if !due.is_empty() {
            drop(q);
            // A sleeper that went away (client disconnected) is simply gone.
            for wake in due.drain(..) {
                let _ = wake.send(());
            }
            q = queue();
            continue;
        }
        q = match q.heap.peek() {
            Some(Reverse(e)) => {
                let wait = e.deadline.saturating_duration_since(now);
                CHANGED.wait_timeout(q, wait).unwrap_or_else(|e| e.into_inner()).0
            }
            None => CHANGED.wait(q).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The median lateness of 64 overlapping sleeps of about 5 ms.
    fn median_lateness(rt: &tokio::runtime::Runtime) -> Duration {
        let mut lateness: Vec<Duration> = rt.block_on(async {
            let tasks: Vec<_> = (0..64u64)
                .map(|i| {
                    tokio::spawn(async move {
                        let deadline = Instant::now() + Duration::from_micros(5_000 + i * 37);
                        sleep_until(deadline).await;
                        Instant::now().checked_duration_since(deadline)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap().expect("woke before the deadline"));
            }
            out
        });
        lateness.sort();
        lateness[lateness.len() / 2]
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn never_early_and_on_time() {
        // Never early, ever. How late is a matter of the machine's load: on
        // an idle machine tens of µs (tokio's own timer: 0.5–1.5 ms), which
        // the benchmark shows as the fake's time per request; here only a
        // bound that a shared, busy machine cannot break.
        let median = median_lateness(&runtime());
        assert!(median < Duration::from_millis(50), "median lateness {median:?}");
    }

    #[test]
    fn an_earlier_deadline_wakes_the_thread() {
        let rt = runtime();
        let took = rt.block_on(async {
            let long = tokio::spawn(sleep_until(Instant::now() + Duration::from_secs(2)));
            // Let the long sleep be the one the timer thread waits for.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let started = Instant::now();
            sleep_until(started + Duration::from_millis(5)).await;
            let took = started.elapsed();
            long.abort();
            took
        });
        assert!(took >= Duration::from_millis(5));
        assert!(took < Duration::from_secs(1), "the 5 ms sleep took {took:?}");
    }
}
