//! client-go's token bucket (`-kubeconfig-qps` tokens a second, `-kubeconfig-burst`
//! capacity, starting full), with two waiting lines: an urgent request is
//! granted before any waiting routine one, and within a line requests are
//! served in arrival order.
//!
//! One dispatcher task owns the bucket and the lines, so the order is decided
//! in one place; a waiter that gives up (its future dropped) is skipped and
//! its token stays in the bucket.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// client-go's `DefaultQPS`/`DefaultBurst`, used when the flag is 0.
pub const DEFAULT_QPS: u32 = 5;
pub const DEFAULT_BURST: u32 = 10;

/// Which waiting line a request joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Urgent,
    Routine,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimiterError {
    #[error("the rate limiter needs a tokio runtime: create the Kubernetes clients inside one")]
    NoRuntime,
    #[error("the rate limiter stopped (its tokio runtime shut down)")]
    Stopped,
}

/// A token bucket: `rate` tokens a second up to `capacity`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    /// client-go semantics: qps 0 means 5, burst 0 means 10; the bucket
    /// starts full.
    pub fn new(qps: u32, burst: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(if qps == 0 { DEFAULT_QPS } else { qps });
        let capacity = f64::from(if burst == 0 { DEFAULT_BURST } else { burst });
        TokenBucket {
            tokens: capacity,
            capacity,
            rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes a token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - self.tokens;
        // Round up to a whole microsecond so the retry finds the token there.
        let micros = (missing / self.rate * 1e6).ceil();
        Err(Duration::from_micros(micros as u64))
    }
}

struct Waiter {
    lane: Lane,
    grant: oneshot::Sender<()>,
}

/// Cheap to clone; every clone shares one bucket and one pair of lines.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl RateLimiter {
    /// Spawns the dispatcher on the current tokio runtime.
    pub fn new(qps: u32, burst: u32) -> Result<RateLimiter, LimiterError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| LimiterError::NoRuntime)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let bucket = TokenBucket::new(qps, burst, Instant::now());
        handle.spawn(dispatch(bucket, rx));
        Ok(RateLimiter { requests: tx })
    }

    /// Joins `lane` now; the future resolves when the token is granted.
    /// Dropping it leaves the line without taking a token.
    pub fn acquire(
        &self,
        lane: Lane,
    ) -> impl Future<Output = Result<(), LimiterError>> + Send + 'static {
        let (grant, granted) = oneshot::channel();
        let joined = self.requests.send(Waiter { lane, grant });
        async move {
            joined.map_err(|_| LimiterError::Stopped)?;
            granted.await.map_err(|_| LimiterError::Stopped)
        }
    }
}

#[derive(Default)]
struct Lines {
    urgent: VecDeque<oneshot::Sender<()>>,
    routine: VecDeque<oneshot::Sender<()>>,
}

impl Lines {
    fn push(&mut self, waiter: Waiter) {
        match waiter.lane {
            Lane::Urgent => self.urgent.push_back(waiter.grant),
            Lane::Routine => self.routine.push_back(waiter.grant),
        }
    }

    /// Drops waiters that gave up, so they neither delay nor take a token.
    fn prune(&mut self) {
        self.urgent.retain(|w| !w.is_closed());
        self.routine.retain(|w| !w.is_closed());
    }

    fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.routine.is_empty()
    }

    fn pop(&mut self) -> Option<oneshot::Sender<()>> {
        self.urgent.pop_front().or_else(|| self.routine.pop_front())
    }
}

async fn dispatch(mut bucket: TokenBucket, mut requests: mpsc::UnboundedReceiver<Waiter>) {
    let mut lines = Lines::default();
    let mut open = true;
    loop {
        // Everything already sent joins its line before the next grant, so a
        // later urgent request is not overtaken by an earlier routine one.
        while let Ok(waiter) = requests.try_recv() {
            lines.push(waiter);
        }
        lines.prune();
        if lines.is_empty() {
            if !open {
                return;
            }
            match requests.recv().await {
                Some(waiter) => lines.push(waiter),
                None => return,
            }
            continue;
        }
        match bucket.try_take(Instant::now()) {
            Ok(()) => {
                if let Some(waiter) = lines.pop()
                    && waiter.send(()).is_err()
                {
                    // Gave up between prune and grant: give the token back.
                    bucket.tokens += 1.0;
                }
            }
            Err(wait) => {
                // A new (maybe urgent) request re-decides who is next.
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    waiter = requests.recv(), if open => match waiter {
                        Some(waiter) => lines.push(waiter),
                        None => open = false,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn zero_flags_take_client_go_defaults() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, 0, now);
        for _ in 0..DEFAULT_BURST {
            assert!(bucket.try_take(now).is_ok());
        }
        assert_eq!(bucket.try_take(now), Err(Duration::from_millis(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_served_at_once_then_qps_paces() {
        let limiter = RateLimiter::new(10, 3).unwrap();
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..7 {
            limiter.acquire(Lane::Routine).await.unwrap();
            at.push(start.elapsed());
        }
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 0, 0, 100, 200, 300, 400]);
    }

    #[tokio::test(start_paused = true)]
    async fn refill_is_capped_at_burst() {
        let limiter = RateLimiter::new(2, 2).unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire(Lane::Routine).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_overtakes_waiting_routine_requests() {
        let limiter = RateLimiter::new(1, 1).unwrap();
        limiter.acquire(Lane::Routine).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, lane) in [
            ("r1", Lane::Routine),
            ("r2", Lane::Routine),
            ("u1", Lane::Urgent),
            ("u2", Lane::Urgent),
        ] {
            let limiter = limiter.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                limiter.acquire(lane).await.unwrap();
                order.lock().unwrap().push(name);
            }));
            // Let each join its line in this order before the next one.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["u1", "u2", "r1", "r2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_arriving_during_a_wait_is_next() {
        let limiter = RateLimiter::new(1, 1).unwrap();
        limiter.acquire(Lane::Routine).await.unwrap();
        let routine = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter.acquire(Lane::Routine).await.unwrap();
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        limiter.acquire(Lane::Urgent).await.unwrap();
        let urgent_at = Instant::now();
        let routine_at = routine.await.unwrap();
        assert_eq!(urgent_at - start, Duration::from_millis(500));
        assert_eq!(routine_at - urgent_at, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_its_token() {
        let limiter = RateLimiter::new(1, 1).unwrap();
        limiter.acquire(Lane::Routine).await.unwrap();
        let gave_up =
            tokio::time::timeout(Duration::from_millis(100), limiter.acquire(Lane::Urgent)).await;
        assert!(gave_up.is_err());
        let start = Instant::now();
        limiter.acquire(Lane::Routine).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(900));
    }

    #[test]
    fn needs_a_runtime() {
        assert_eq!(RateLimiter::new(1, 1).unwrap_err(), LimiterError::NoRuntime);
    }
}
