//! Bounded concurrency plus a bounded waiting line in front of a port.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use crate::ports::PortError;

/// `running` calls at most in flight, `queued` more may wait; beyond that a
/// call fails fast with [`PortError::Overloaded`] instead of piling up.
#[derive(Clone, Debug)]
pub struct Limiter {
    name: &'static str,
    admission: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl Limiter {
    pub fn new(name: &'static str, running: usize, queued: usize) -> Limiter {
        let running = running.max(1);
        Limiter {
            name,
            admission: Arc::new(Semaphore::new(running.saturating_add(queued))),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    /// Runs `call` once a slot is free, giving up at `deadline`.
    pub fn run<T, F>(
        &self,
        deadline: Instant,
        call: impl FnOnce() -> F + Send + 'static,
    ) -> impl Future<Output = Result<T, PortError>> + Send + 'static
    where
        T: Send + 'static,
        F: Future<Output = Result<T, PortError>> + Send + 'static,
    {
        let this = self.clone();
        async move {
            // Held until the call ends, so the waiting line is bounded too.
            let _admitted = this
                .admission
                .clone()
                .try_acquire_owned()
                .map_err(|_| PortError::Overloaded(this.name))?;
            let _running = timeout_at(deadline, this.running.clone().acquire_owned())
                .await
                .map_err(|_| PortError::Timeout)?
                .map_err(|_| PortError::Unavailable(this.name.to_owned()))?;
            timeout_at(deadline, call())
                .await
                .map_err(|_| PortError::Timeout)?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn bounds_running_and_queued_calls() {
        let limiter = Limiter::new("test", 2, 1);
        let deadline = Instant::now() + Duration::from_secs(100);
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, PortError>(())
        };
        let a = tokio::spawn(limiter.run(deadline, slow));
        let b = tokio::spawn(limiter.run(deadline, slow));
        let c = tokio::spawn(limiter.run(deadline, slow));
        tokio::task::yield_now().await;
        let d = limiter.run(deadline, slow).await;
        assert_eq!(d, Err(PortError::Overloaded("test")));
        let start = Instant::now();
        for h in [a, b, c] {
            assert_eq!(h.await.unwrap(), Ok(()));
        }
        // Two ran together, the third waited for a slot.
        assert_eq!(start.elapsed(), Duration::from_secs(20));
    }
}
