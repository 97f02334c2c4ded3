//! The shared ports: one [`PortActor`] per port (workload, router, metrics,
//! webhooks, notifier) that every canary actor calls through.
//!
//! A port actor owns the port's waiting line, a [`FairQueue`] with one line
//! per namespace, and the count of calls in flight. It starts at most
//! `concurrency` calls at once, each as a task on the I/O runtime (the
//! operator's multi-thread tokio runtime), so no arbiter thread polls them
//! and a slow backend holds up only its own port. A call whose step gave up
//! while it waited is dropped unstarted.
//!
//! What a caller gets back separates Serin's own congestion from the
//! provider's answer: [`PortError::Overloaded`] (the line is full),
//! [`PortError::Congested`] (the step's deadline passed before the call
//! started), [`PortError::Unavailable`] (the port actor is gone) and
//! [`PortError::Panicked`] (the adapter panicked) are Serin's; anything
//! else, a [`PortError::Timeout`] of the call's own budget included, is the
//! provider's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, ArbiterHandle, AsyncContext, Context, Handler, Message};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout_at};

use super::Stats;
use super::fair::FairQueue;
use crate::ports::{PortError, PortFuture};

/// Limits of one port actor.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Calls one namespace may have waiting; beyond it, `Overloaded`.
    pub line: usize,
    /// Mailbox capacity (a full mailbox makes callers wait).
    pub mailbox: usize,
}

/// One call waiting for a slot, type-erased.
trait PendingCall: Send {
    /// The caller is no longer waiting for the answer.
    fn abandoned(&self) -> bool;
    fn refuse(self: Box<Self>, err: PortError);
    /// The call, to run on the I/O runtime; it sends its own answer.
    fn start(self: Box<Self>) -> BoxFuture<'static, ()>;
}

struct Call<T, F> {
    reply: oneshot::Sender<Result<T, PortError>>,
    started: Arc<AtomicBool>,
    budget: Duration,
    run: F,
}

impl<T, F> PendingCall for Call<T, F>
where
    T: Send + 'static,
    F: FnOnce(Instant) -> PortFuture<T> + Send + 'static,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn refuse(self: Box<Self>, err: PortError) {
        let _ = self.reply.send(Err(err));
    }

    fn start(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.started.store(true, Ordering::Release);
        let Call {
            reply, budget, run, ..
        } = *self;
        Box::pin(async move {
            // The budget counts from the start, not from the queue.
            let deadline = Instant::now() + budget;
            let call = std::panic::AssertUnwindSafe(async move {
                timeout_at(deadline, run(deadline))
                    .await
                    .unwrap_or(Err(PortError::Timeout))
            });
            let answer = match call.catch_unwind().await {
                Ok(answer) => answer,
                Err(panic) => Err(PortError::Panicked(panic_message(panic.as_ref()))),
            };
            let _ = reply.send(answer);
        })
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

struct Pending {
    /// The step gives up on the call at this instant if it has not started.
    queue_deadline: Instant,
    call: Box<dyn PendingCall>,
}

/// Queue a call.
#[derive(Message)]
#[rtype(result = "()")]
struct Submit {
    tenant: String,
    step_started: Instant,
    pending: Pending,
}

/// The actor in front of one port.
pub struct PortActor {
    name: &'static str,
    limits: PortLimits,
    queue: FairQueue<Pending>,
    in_flight: usize,
    io: Handle,
    stats: Arc<Stats>,
}

impl PortActor {
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < self.limits.concurrency.max(1) {
            let Some(pending) = self.queue.pop() else {
                return;
            };
            if pending.call.abandoned() {
                continue;
            }
            if Instant::now() >= pending.queue_deadline {
                Stats::bump(&self.stats.congested_calls);
                pending.call.refuse(PortError::Congested(self.name));
                continue;
            }
            self.in_flight += 1;
            let task = self.io.spawn(pending.call.start());
            // Waiting on the handle is all the arbiter does for the call.
            ctx.spawn(actix::fut::wrap_future::<_, Self>(task).map(|_, act, ctx| {
                act.in_flight -= 1;
                act.pump(ctx);
            }));
        }
    }
}

impl Actor for PortActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.limits.mailbox);
    }
}

impl Handler<Submit> for PortActor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        if self.queue.waiting(&msg.tenant) >= self.limits.line {
            Stats::bump(&self.stats.overloaded_calls);
            msg.pending.call.refuse(PortError::Overloaded(self.name));
            return;
        }
        self.queue.push(&msg.tenant, msg.step_started, msg.pending);
        self.pump(ctx);
    }
}

/// Who a call is for and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions<'a> {
    /// The namespace whose line the call waits in.
    pub tenant: &'a str,
    /// When the step that makes the call started (its place in the line).
    pub step_started: Instant,
    /// The call is dropped, `Congested`, if it has not started by then.
    pub queue_deadline: Instant,
    /// How long the call may run once started.
    pub budget: Duration,
}

/// A port behind its actor: what canary actors hold.
pub struct Shared<P: ?Sized> {
    port: Arc<P>,
    addr: Addr<PortActor>,
}

impl<P: ?Sized> Clone for Shared<P> {
    fn clone(&self) -> Self {
        Shared {
            port: self.port.clone(),
            addr: self.addr.clone(),
        }
    }
}

impl<P: ?Sized + Send + Sync + 'static> Shared<P> {
    /// Starts the actor of `port` on `arbiter`; its calls run on `io`.
    pub fn start(
        name: &'static str,
        port: Arc<P>,
        limits: PortLimits,
        arbiter: &ArbiterHandle,
        io: Handle,
        stats: Arc<Stats>,
    ) -> Shared<P> {
        let addr = PortActor::start_in_arbiter(arbiter, move |_| PortActor {
            name,
            limits,
            queue: FairQueue::default(),
            in_flight: 0,
            io,
            stats,
        });
        Shared { port, addr }
    }

    /// The port itself, for calls that need no line (reads of a cache).
    pub fn port(&self) -> &Arc<P> {
        &self.port
    }

    /// Queues `call` in the tenant's line and waits for its answer.
    pub fn call<T, F>(
        &self,
        options: CallOptions<'_>,
        call: F,
    ) -> impl Future<Output = Result<T, PortError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&P, Instant) -> PortFuture<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let started = Arc::new(AtomicBool::new(false));
        let port = self.port.clone();
        let pending = Pending {
            queue_deadline: options.queue_deadline,
            call: Box::new(Call {
                reply,
                started: started.clone(),
                budget: options.budget,
                run: move |deadline| call(&*port, deadline),
            }),
        };
        let submit = Submit {
            tenant: options.tenant.to_string(),
            step_started: options.step_started,
            pending,
        };
        let addr = self.addr.clone();
        let queue_deadline = options.queue_deadline;
        async move {
            addr.send(submit)
                .await
                .map_err(|err| PortError::Unavailable(err.to_string()))?;
            wait(answer, &started, queue_deadline).await
        }
    }
}

/// Waits for the answer; gives up, `Congested`, if the call has not started
/// by `queue_deadline`. A started call is bounded by its own budget.
async fn wait<T>(
    answer: oneshot::Receiver<Result<T, PortError>>,
    started: &AtomicBool,
    queue_deadline: Instant,
) -> Result<T, PortError> {
    let gone = |_| PortError::Unavailable("the port actor dropped the call".to_string());
    tokio::pin!(answer);
    match timeout_at(queue_deadline, &mut answer).await {
        Ok(answer) => answer.map_err(gone)?,
        Err(_) if started.load(Ordering::Acquire) => answer.await.map_err(gone)?,
        Err(_) => Err(PortError::Congested(
            "the step's deadline passed in the line",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::Arbiter;

    fn limits(concurrency: usize, line: usize) -> PortLimits {
        PortLimits {
            concurrency,
            line,
            mailbox: 64,
        }
    }

    /// A port that takes `latency` per call and records who called when.
    struct Slow {
        latency: Duration,
        log: std::sync::Mutex<Vec<(String, Instant)>>,
    }

    impl Slow {
        fn call(&self, who: &str) -> PortFuture<String> {
            self.log
                .lock()
                .unwrap()
                .push((who.to_string(), Instant::now()));
            let (latency, who) = (self.latency, who.to_string());
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                Ok(who)
            })
        }
    }

    fn slow(latency_ms: u64) -> Arc<Slow> {
        Arc::new(Slow {
            latency: Duration::from_millis(latency_ms),
            log: Default::default(),
        })
    }

    fn start(port: &Arc<Slow>, limits: PortLimits) -> Shared<Slow> {
        Shared::start(
            "test",
            port.clone(),
            limits,
            &Arbiter::current(),
            Handle::current(),
            Arc::new(Stats::default()),
        )
    }

    fn options(tenant: &str, patience: Duration) -> CallOptions<'_> {
        let now = Instant::now();
        CallOptions {
            tenant,
            step_started: now,
            queue_deadline: now + patience,
            budget: Duration::from_secs(5),
        }
    }

    #[actix::test]
    async fn a_small_tenant_waits_one_turn_behind_a_large_one() {
        tokio::time::pause();
        let port = slow(200);
        let shared = start(&port, limits(2, 1000));
        let mut calls = Vec::new();
        for i in 0..100 {
            let who = format!("a{i}");
            calls.push(tokio::spawn(
                shared.call(options("a", Duration::from_secs(60)), move |p, _| {
                    p.call(&who)
                }),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        let b = shared
            .call(options("b", Duration::from_secs(60)), |p, _| p.call("b"))
            .await;
        assert_eq!(b, Ok("b".to_string()));
        // One turn: a slot frees within 200 ms, then B's own 200 ms.
        assert!(
            t0.elapsed() <= Duration::from_millis(400),
            "{:?}",
            t0.elapsed()
        );
        for call in calls {
            assert!(call.await.unwrap().is_ok());
        }
        assert_eq!(port.log.lock().unwrap().len(), 101);
    }

    #[actix::test]
    async fn a_call_that_cannot_start_in_time_is_congested_and_never_made() {
        tokio::time::pause();
        let port = slow(1000);
        let shared = start(&port, limits(1, 1000));
        let busy = tokio::spawn(shared.call(options("a", Duration::from_secs(60)), |p, _| {
            p.call("first")
        }));
        tokio::task::yield_now().await;
        let late = shared
            .call(options("a", Duration::from_millis(500)), |p, _| {
                p.call("late")
            })
            .await;
        assert_eq!(
            late,
            Err(PortError::Congested(
                "the step's deadline passed in the line"
            ))
        );
        assert_eq!(busy.await.unwrap(), Ok("first".to_string()));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let made: Vec<String> = port
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|(w, _)| w.clone())
            .collect();
        assert_eq!(made, ["first"], "the abandoned call was never made");
    }

    #[actix::test]
    async fn a_full_line_refuses_with_overloaded() {
        tokio::time::pause();
        let port = slow(1000);
        let shared = start(&port, limits(1, 2));
        let mut calls = Vec::new();
        for i in 0..3 {
            let who = format!("a{i}");
            calls.push(tokio::spawn(
                shared.call(options("a", Duration::from_secs(60)), move |p, _| {
                    p.call(&who)
                }),
            ));
            tokio::task::yield_now().await;
        }
        // One runs, two wait: the line of "a" is full, "b" still gets in.
        let refused = shared
            .call(options("a", Duration::from_secs(60)), |p, _| p.call("x"))
            .await;
        assert_eq!(refused, Err(PortError::Overloaded("test")));
        let b = shared
            .call(options("b", Duration::from_secs(60)), |p, _| p.call("b"))
            .await;
        assert_eq!(b, Ok("b".to_string()));
        for call in calls {
            assert!(call.await.unwrap().is_ok());
        }
    }

    #[actix::test]
    async fn the_budget_counts_from_the_start_and_a_slow_call_is_the_providers_timeout() {
        tokio::time::pause();
        let port = slow(10_000);
        let shared = start(&port, limits(1, 10));
        let answer = shared
            .call(options("a", Duration::from_secs(60)), |p, _| p.call("x"))
            .await;
        assert_eq!(answer, Err(PortError::Timeout));
    }

    #[actix::test]
    async fn a_panicking_adapter_is_reported_not_spread() {
        tokio::time::pause();
        let port = slow(10);
        let shared = start(&port, limits(1, 10));
        #[allow(clippy::panic, reason = "the panic under test")]
        let answer: Result<String, PortError> = shared
            .call(options("a", Duration::from_secs(60)), |_, _| {
                Box::pin(async { panic!("adapter bug") })
            })
            .await;
        assert_eq!(answer, Err(PortError::Panicked("adapter bug".to_string())));
        // The actor still serves.
        let next = shared
            .call(options("a", Duration::from_secs(60)), |p, _| p.call("next"))
            .await;
        assert_eq!(next, Ok("next".to_string()));
    }
}
