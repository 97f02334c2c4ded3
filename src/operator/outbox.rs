//! The bridge's own API writes, one line per canary: they run off the
//! bridge's loop, so a slow write never holds up another canary's wake-up,
//! and one canary's writes keep their order (set, then clear, `Valid`).

use std::collections::HashMap;

use futures::future::BoxFuture;
use serin_actors::ports::CanaryKey;
use tokio::sync::mpsc;

type Write = BoxFuture<'static, ()>;

#[derive(Default)]
pub struct Outbox {
    lines: HashMap<CanaryKey, mpsc::UnboundedSender<Write>>,
}

impl Outbox {
    /// Queues `write` behind the canary's earlier writes.
    pub fn send(&mut self, key: &CanaryKey, write: impl Future<Output = ()> + Send + 'static) {
        let mut write: Write = Box::pin(write);
        if let Some(line) = self.lines.get(key) {
            match line.send(write) {
                Ok(()) => return,
                // The worker is gone (it never is while the entry lives,
                // short of a panic in a write): start another.
                Err(mpsc::error::SendError(back)) => write = back,
            }
        }
        let (line, mut queue) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(async move {
            while let Some(write) = queue.recv().await {
                write.await;
            }
        });
        let _ = line.send(write);
        self.lines.insert(key.clone(), line);
    }

    /// The canary is gone: its worker ends once its queued writes are done.
    pub fn forget(&mut self, key: &CanaryKey) {
        self.lines.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_canarys_writes_keep_their_order_and_others_do_not_wait() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut outbox = Outbox::default();
        let (a, b) = (CanaryKey::new("ns", "a"), CanaryKey::new("ns", "b"));
        for (i, delay) in [(1, 300), (2, 10), (3, 0)] {
            let log = log.clone();
            outbox.send(&a, async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                log.lock().unwrap().push(format!("a{i}"));
            });
        }
        let log_b = log.clone();
        outbox.send(
            &b,
            async move { log_b.lock().unwrap().push("b1".to_string()) },
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(*log.lock().unwrap(), ["b1", "a1", "a2", "a3"]);
        outbox.forget(&a);
        outbox.forget(&b);
    }
}
