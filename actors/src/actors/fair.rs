//! The waiting line of a shared port: one line per tenant (namespace),
//! served in turn, so a namespace with thousands of waiting calls delays
//! another namespace's call by at most one turn. Within a line the oldest
//! *step* goes first (its ticket is the step's start), so a step that already
//! had one call served gets its next one before newer steps get their first:
//! under overload steps finish instead of all timing out half done.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

/// Orders the calls of one line: the step's start, then arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket {
    pub step_started: Instant,
    seq: u64,
}

struct Waiting<T> {
    ticket: Ticket,
    item: T,
}

impl<T> PartialEq for Waiting<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ticket == other.ticket
    }
}

impl<T> Eq for Waiting<T> {}

impl<T> PartialOrd for Waiting<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Waiting<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ticket.cmp(&other.ticket)
    }
}

type Line<T> = BinaryHeap<Reverse<Waiting<T>>>;

/// Lines per tenant, served round robin.
pub struct FairQueue<T> {
    lines: HashMap<Arc<str>, Line<T>>,
    /// Tenants with a non-empty line, in serving order.
    turns: VecDeque<Arc<str>>,
    len: usize,
    seq: u64,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            lines: HashMap::new(),
            turns: VecDeque::new(),
            len: 0,
            seq: 0,
        }
    }
}

impl<T> FairQueue<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls waiting in `tenant`'s line.
    pub fn waiting(&self, tenant: &str) -> usize {
        self.lines.get(tenant).map_or(0, BinaryHeap::len)
    }

    /// Tenants with a call waiting.
    pub fn tenants(&self) -> usize {
        self.turns.len()
    }

    pub fn push(&mut self, tenant: &str, step_started: Instant, item: T) {
        self.seq = self.seq.wrapping_add(1);
        let waiting = Waiting {
            ticket: Ticket {
                step_started,
                seq: self.seq,
            },
            item,
        };
        match self.lines.get_mut(tenant) {
            Some(line) => line.push(Reverse(waiting)),
            None => {
                let tenant: Arc<str> = Arc::from(tenant);
                let mut line = BinaryHeap::new();
                line.push(Reverse(waiting));
                self.lines.insert(tenant.clone(), line);
                self.turns.push_back(tenant);
            }
        }
        self.len += 1;
    }

    /// The next call: the oldest step of the tenant whose turn it is.
    pub fn pop(&mut self) -> Option<T> {
        let tenant = self.turns.pop_front()?;
        let line = self.lines.get_mut(&tenant)?;
        let Reverse(next) = line.pop()?;
        if line.is_empty() {
            self.lines.remove(&tenant);
        } else {
            self.turns.push_back(tenant);
        }
        self.len -= 1;
        Some(next.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tenants_take_turns_whatever_their_backlog() {
        let t0 = Instant::now();
        let mut q = FairQueue::default();
        for i in 0..1000 {
            q.push("a", t0, format!("a{i}"));
        }
        q.push("b", t0, "b0".to_string());
        q.push("b", t0, "b1".to_string());
        assert_eq!(q.len(), 1002);
        assert_eq!(q.tenants(), 2);
        let first: Vec<String> = (0..5).filter_map(|_| q.pop()).collect();
        assert_eq!(first, ["a0", "b0", "a1", "b1", "a2"]);
        assert_eq!(q.waiting("b"), 0);
        assert_eq!(q.tenants(), 1);
        assert_eq!(q.len(), 997);
    }

    #[test]
    fn within_a_line_the_oldest_step_goes_first() {
        let t0 = Instant::now();
        let mut q = FairQueue::default();
        q.push("a", t0 + Duration::from_secs(2), "new step");
        q.push("a", t0, "old step, second call");
        q.push("a", t0 + Duration::from_secs(2), "new step, later");
        assert_eq!(q.pop(), Some("old step, second call"));
        // Same step start: arrival order.
        assert_eq!(q.pop(), Some("new step"));
        assert_eq!(q.pop(), Some("new step, later"));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_tenant_that_comes_back_joins_the_end_of_the_round() {
        let t0 = Instant::now();
        let mut q = FairQueue::default();
        q.push("a", t0, 1);
        q.push("b", t0, 2);
        assert_eq!(q.pop(), Some(1));
        q.push("a", t0, 3);
        q.push("c", t0, 4);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), None);
    }
}
