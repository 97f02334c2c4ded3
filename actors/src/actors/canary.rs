//! One actor per Canary: owns spec and status, runs analysis steps.
//!
//! The interval timer exists only while a run is in flight; an idle canary
//! (Initialized, Succeeded, Failed) sleeps until a watch sends
//! [`TargetChanged`] or [`SpecChanged`], which step it at once. During a run
//! those messages only update the spec/interval and the timer does the rest.
//! Steps never overlap: a timer tick that finds a step running is dropped, a
//! message-driven one is queued.
//!
//! A panic in a step (or in an adapter serving it) restarts the actor at
//! once under its `Supervisor`, reloaded from the last persisted status;
//! after [`PANICS_BEFORE_BACKOFF`] panics in a row it waits longer before
//! each attempt and says so (a Warning event and `Stalled=True`). A step
//! deferred by Serin's own congestion is retried at the next tick and
//! reported once per run.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult,
    SpawnHandle, Supervised, WrapFuture,
};
use futures::FutureExt;
use tokio::time::Instant;

use super::shared::panic_message;
use super::step::{self, StepDone, StepError};
use super::{Services, Stats};
use crate::events::{Event, text};
use crate::model::spec::CanarySpec;
use crate::model::status::{CanaryStatus, Phase};
use crate::ports::{CanaryKey, PortError};

/// Panics in a row that restart the actor at once; more back off.
pub const PANICS_BEFORE_BACKOFF: u32 = 3;
/// The first backoff, doubled for each further panic in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long to wait before the step after the `panics`-th panic in a row.
fn backoff(panics: u32) -> Duration {
    let Some(extra) = panics.checked_sub(PANICS_BEFORE_BACKOFF) else {
        return Duration::ZERO;
    };
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(extra.min(16)))
        .min(MAX_BACKOFF)
}

/// What the restarted actor does first.
#[derive(Debug, Clone)]
struct Restart {
    delay: Duration,
    panic: String,
}

/// The Canary object changed (new generation from the watch).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SpecChanged(pub Arc<CanarySpec>);

/// The target workload or a tracked config changed: step now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TargetChanged;

/// Stop for good (send only after dropping the registry's `Addr`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The Canary is being deleted: stop stepping and persist `Terminating`.
#[derive(Message)]
#[rtype(result = "Result<(), crate::ports::PortError>")]
pub struct Terminate;

/// Snapshot of the actor, for inspection and tests.
#[derive(Message)]
#[rtype(result = "CanaryState")]
pub struct GetState;

#[derive(Debug, Clone, PartialEq)]
pub struct CanaryState {
    pub spec: Arc<CanarySpec>,
    pub status: CanaryStatus,
    /// The interval timer is armed.
    pub ticking: bool,
    pub in_flight: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Timer,
    Wake,
}

/// The armed interval timer and its schedule: tick `n` is due at
/// `armed + n * interval`.
#[derive(Debug, Clone, Copy)]
struct Timer {
    handle: SpawnHandle,
    interval: Duration,
    armed: Instant,
    ticks: u32,
}

pub struct CanaryActor {
    key: CanaryKey,
    spec: Arc<CanarySpec>,
    status: CanaryStatus,
    services: Services,
    timer: Option<Timer>,
    in_flight: bool,
    queued: bool,
    /// Panics in a row, reset by a step that ends without one.
    panics: u32,
    /// Set before a restart, taken by the restarted actor.
    restart: Option<Restart>,
    /// The run (`lastAppliedSpec`) whose deferral was already reported.
    deferral_reported: Option<String>,
    /// A retry of a failed step armed while no timer runs.
    retry: Option<SpawnHandle>,
    /// The target or spec changed after the current step started; if the
    /// run ends before a tick has seen it, the actor steps once more.
    unseen_change: bool,
    /// No status was ever persisted for this Canary: write `Initializing`
    /// first, as Flagger's sync does before the first tick.
    unpersisted: bool,
    /// Deleting: no more steps.
    terminating: bool,
    /// Who waits for the Terminating status to be written.
    terminated: Vec<tokio::sync::oneshot::Sender<Result<(), PortError>>>,
}

impl CanaryActor {
    /// `status` is the last persisted one (`None` for a new Canary).
    pub fn new(spec: Arc<CanarySpec>, status: Option<CanaryStatus>, services: Services) -> Self {
        CanaryActor {
            key: CanaryKey::of(&spec),
            spec,
            unpersisted: status.is_none(),
            terminating: false,
            terminated: Vec::new(),
            status: status.unwrap_or_default(),
            services,
            timer: None,
            in_flight: false,
            queued: false,
            panics: 0,
            restart: None,
            deferral_reported: None,
            retry: None,
            unseen_change: false,
        }
    }

    /// Phases that need the interval timer. Initializing retries until the
    /// primary is ready; the rest are Flagger's in-flight phases.
    fn wants_timer(phase: Phase) -> bool {
        phase == Phase::Initializing || phase.is_active()
    }

    /// A timer tick: record its lateness against the grid, then step.
    fn on_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.as_mut() {
            timer.ticks = timer.ticks.saturating_add(1);
            let due = timer.armed + timer.interval.saturating_mul(timer.ticks);
            let late = Instant::now().saturating_duration_since(due);
            self.services.stats.tick_lateness.record(late);
            if let Some(observer) = &self.services.observer {
                observer.tick_lateness(late);
            }
        }
        self.request_step(Cause::Timer, ctx);
    }

    fn request_step(&mut self, cause: Cause, ctx: &mut Context<Self>) {
        if self.terminating {
            return;
        }
        if self.in_flight {
            match cause {
                Cause::Timer => Stats::bump(&self.services.stats.skipped_ticks),
                Cause::Wake => self.queued = true,
            }
            return;
        }
        if let Some(retry) = self.retry.take() {
            ctx.cancel_future(retry);
        }
        self.in_flight = true;
        // This step observes whatever changed before it started.
        self.unseen_change = false;
        let fut = step::Timed::new(
            step::run(
                self.services.clone(),
                self.spec.clone(),
                self.status.clone(),
            ),
            self.services.stats.clone(),
        );
        // A panic must not take the actor's task down: it becomes an error
        // here, and the actor restarts itself under its supervisor.
        let fut = AssertUnwindSafe(fut).catch_unwind().map(|result| {
            result.unwrap_or_else(|panic| Err(StepError::Panicked(panic_message(panic.as_ref()))))
        });
        ctx.spawn(
            fut.into_actor(self)
                .map(|result, act, ctx| act.finish_step(result, ctx)),
        );
    }

    fn finish_step(&mut self, result: Result<StepDone, StepError>, ctx: &mut Context<Self>) {
        self.in_flight = false;
        if self.terminating {
            if let Ok(StepDone {
                persisted: Some(status),
                ..
            }) = result
            {
                self.status = status;
            }
            return self.write_terminating(ctx);
        }
        match result {
            Ok(done) => {
                if let Some(status) = done.persisted {
                    self.status = status;
                }
                self.recovered(ctx);
                if done.revisit {
                    self.retry_if_idle(ctx);
                }
            }
            Err(err) => {
                if let Some(panic) = err.panic_message() {
                    return self.restart_after_panic(panic.to_string(), ctx);
                }
                if err.is_deferral() {
                    self.deferred(&err, ctx);
                } else {
                    Stats::bump(&self.services.stats.failed_ticks);
                    tracing::warn!(canary = %self.key, error = %err, "analysis step failed");
                }
                self.retry_if_idle(ctx);
            }
        }
        self.rearm(ctx);
        // A change that came during the last step of a run: no tick will see it.
        let missed = self.timer.is_none() && std::mem::take(&mut self.unseen_change);
        if std::mem::take(&mut self.queued) || missed {
            self.request_step(Cause::Wake, ctx);
        }
    }

    /// A failed step of a canary without a timer, or one that left a new
    /// revision waiting, runs again one interval later, as Flagger's next
    /// tick would.
    fn retry_if_idle(&mut self, ctx: &mut Context<Self>) {
        if Self::wants_timer(self.status.phase) || self.retry.is_some() {
            return;
        }
        let interval = self.spec.analysis.interval();
        self.retry = Some(ctx.run_later(interval, |act, ctx| {
            act.retry = None;
            act.request_step(Cause::Wake, ctx);
        }));
    }

    /// Serin's own congestion: counted, logged, reported once per run.
    fn deferred(&mut self, err: &StepError, ctx: &mut Context<Self>) {
        Stats::bump(&self.services.stats.deferred_steps);
        if let Some(observer) = &self.services.observer {
            observer.step_deferred(&self.key);
        }
        tracing::info!(canary = %self.key, reason = %err, "analysis step deferred by Serin's own congestion");
        let run = &self.status.last_applied_spec;
        if self.deferral_reported.as_ref() == Some(run) {
            return;
        }
        self.deferral_reported = Some(run.clone());
        let event = Event::warning(text::step_deferred(&self.spec, &err.to_string()));
        self.record(event, ctx);
    }

    /// A step ended without a panic: the streak is over, and a `Stalled`
    /// condition written during it is cleared.
    fn recovered(&mut self, ctx: &mut Context<Self>) {
        self.panics = 0;
        if self.status.stalled.take().is_some() {
            self.persist(ctx);
        }
    }

    fn restart_after_panic(&mut self, panic: String, ctx: &mut Context<Self>) {
        self.panics = self.panics.saturating_add(1);
        Stats::bump(&self.services.stats.restarts);
        if let Some(observer) = &self.services.observer {
            observer.actor_restarted(&self.key);
        }
        let delay = backoff(self.panics);
        tracing::error!(
            canary = %self.key,
            panic = %panic,
            in_a_row = self.panics,
            delay = ?delay,
            "analysis step panicked; restarting the canary's actor"
        );
        self.restart = Some(Restart { delay, panic });
        // Under its Supervisor (the registry holds an address) this restarts
        // the actor: `restarting`, then `started`, with the same mailbox.
        ctx.stop();
    }

    /// After a restart: the last persisted status, then a step, at once or
    /// after the backoff (reported as a stall).
    fn resume(&mut self, restart: Restart, ctx: &mut Context<Self>) {
        let (services, key) = (self.services.clone(), self.key.clone());
        let load = async move {
            let deadline = Instant::now() + services.config.call_timeout;
            services.status.load(&key, deadline).await
        };
        ctx.wait(load.into_actor(self).map(move |loaded, act, ctx| {
            match loaded {
                Ok(Some(status)) => act.status = status,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(canary = %act.key, error = %err, "reloading the status after a panic; using the last one held");
                }
            }
            if restart.delay.is_zero() {
                act.request_step(Cause::Wake, ctx);
                return;
            }
            let message = text::stalled(&act.spec, act.panics, restart.delay, &restart.panic);
            act.record(Event::warning(message.clone()), ctx);
            act.status.stalled = Some(message);
            act.persist(ctx);
            act.retry = Some(ctx.run_later(restart.delay, |act, ctx| {
                act.retry = None;
                act.request_step(Cause::Wake, ctx);
            }));
        }));
    }

    /// A Canary nobody wrote a status for yet gets `Initializing` (with its
    /// `Promoted` condition) before its first step.
    fn write_initializing(&mut self, ctx: &mut Context<Self>) {
        self.status.phase = Phase::Initializing;
        self.status.last_transition_time = Some(self.services.clock.now());
        let (services, key, status) =
            (self.services.clone(), self.key.clone(), self.status.clone());
        let write = async move {
            let deadline = Instant::now() + services.config.call_timeout;
            services.status.persist(&key, &status, deadline).await
        };
        ctx.wait(write.into_actor(self).map(|written, act, ctx| {
            match written {
                Ok(()) => act.unpersisted = false,
                // The first step writes a status anyway once it decides.
                Err(err) => {
                    tracing::warn!(canary = %act.key, error = %err, "writing the Initializing status");
                }
            }
            act.request_step(Cause::Wake, ctx);
        }));
    }

    /// Persists `Terminating` (weight and iterations back to 0) with its
    /// event, once, and answers whoever asked.
    fn write_terminating(&mut self, ctx: &mut Context<Self>) {
        let already = self.status.phase == Phase::Terminating;
        let mut status = self.status.clone();
        status.phase = Phase::Terminating;
        status.canary_weight = 0;
        status.iterations = 0;
        status.last_transition_time = Some(self.services.clock.now());
        let (services, key) = (self.services.clone(), self.key.clone());
        let source = self.spec.source.clone();
        let write = async move {
            if already {
                return Ok(None);
            }
            let deadline = Instant::now() + services.config.call_timeout;
            services.status.persist(&key, &status, deadline).await?;
            let event = Event::normal(format!("Terminating canary {key}"));
            if let Err(err) = services
                .events
                .record(&key, &source, &event, deadline)
                .await
            {
                tracing::warn!(canary = %key, error = %err, "event not recorded");
            }
            Ok(Some(status))
        };
        ctx.wait(write.into_actor(self).map(|written, act, _| {
            let answer = written.map(|status| {
                if let Some(status) = status {
                    act.status = status;
                }
            });
            for reply in act.terminated.drain(..) {
                let _ = reply.send(answer.clone());
            }
        }));
    }

    /// Writes the status held now (outside a step: the stall condition).
    fn persist(&self, ctx: &mut Context<Self>) {
        let (services, key, status) =
            (self.services.clone(), self.key.clone(), self.status.clone());
        ctx.spawn(
            async move {
                let deadline = Instant::now() + services.config.call_timeout;
                if let Err(err) = services.status.persist(&key, &status, deadline).await {
                    tracing::warn!(canary = %key, error = %err, "persisting the stall condition");
                }
            }
            .into_actor(self),
        );
    }

    fn record(&self, event: Event, ctx: &mut Context<Self>) {
        let (services, key) = (self.services.clone(), self.key.clone());
        let source = self.spec.source.clone();
        ctx.spawn(
            async move {
                let deadline = Instant::now() + services.config.call_timeout;
                let recorded = services.events.record(&key, &source, &event, deadline);
                if let Err(err) = recorded.await {
                    tracing::warn!(canary = %key, error = %err, message = %event.message, "event not recorded");
                }
            }
            .into_actor(self),
        );
    }

    /// Arms, re-arms (interval changed) or cancels the timer to match the phase.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let want = Self::wants_timer(self.status.phase);
        let interval = self.spec.analysis.interval();
        if let Some(timer) = self.timer {
            if want && timer.interval == interval {
                return;
            }
            ctx.cancel_future(timer.handle);
            self.timer = None;
        }
        if want {
            // Same grid as actix's: it resets from each deadline, not from now.
            let armed = Instant::now();
            let handle =
                ctx.run_interval_at(armed + interval, interval, |act, ctx| act.on_timer(ctx));
            self.timer = Some(Timer {
                handle,
                interval,
                armed,
                ticks: 0,
            });
        }
    }
}

impl Actor for CanaryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Room for watch bursts; the registry uses try_send and requeues on Full.
        ctx.set_mailbox_capacity(64);
        match self.restart.take() {
            Some(restart) => self.resume(restart, ctx),
            None if self.unpersisted => self.write_initializing(ctx),
            // One step at start: initialises a new Canary, resumes a rebuilt one.
            None => self.request_step(Cause::Wake, ctx),
        }
    }
}

impl Supervised for CanaryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // actix reuses this struct; the old context's timers and futures are gone.
        self.timer = None;
        self.retry = None;
        self.in_flight = false;
        // A wake that came in during the step is covered by the step after the restart.
        self.queued = false;
    }
}

impl Handler<SpecChanged> for CanaryActor {
    type Result = ();

    fn handle(&mut self, SpecChanged(spec): SpecChanged, ctx: &mut Context<Self>) {
        let idle = self.timer.is_none();
        // A command-line request is answered now, not at the next tick.
        let requested = spec.request.is_some()
            && spec.request != self.spec.request
            && spec.request.as_ref().map(|r| &r.id)
                != self.status.last_request.as_ref().map(|r| &r.id);
        self.spec = spec;
        // Picks up a new interval; an idle canary has no timer to re-arm.
        self.rearm(ctx);
        if idle || requested {
            self.request_step(Cause::Wake, ctx);
        } else {
            self.unseen_change = true;
        }
    }
}

impl Handler<TargetChanged> for CanaryActor {
    type Result = ();

    fn handle(&mut self, _: TargetChanged, ctx: &mut Context<Self>) {
        // During a run the next timer tick sees the change (as in Flagger);
        // stepping now would advance the weight off schedule. If the run
        // ends first, `finish_step` steps for it.
        if self.timer.is_none() {
            self.request_step(Cause::Wake, ctx);
        } else {
            self.unseen_change = true;
        }
    }
}

impl Handler<Shutdown> for CanaryActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Terminate> for CanaryActor {
    type Result = actix::ResponseFuture<Result<(), PortError>>;

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) -> Self::Result {
        self.terminating = true;
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer.handle);
        }
        if let Some(retry) = self.retry.take() {
            ctx.cancel_future(retry);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.terminated.push(reply);
        // A step in flight persists first; the Terminating write follows it.
        if !self.in_flight {
            self.write_terminating(ctx);
        }
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(PortError::Unavailable("the canary's actor stopped".into()))
            })
        })
    }
}

impl Handler<GetState> for CanaryActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(CanaryState {
            spec: self.spec.clone(),
            status: self.status.clone(),
            ticking: self.timer.is_some(),
            in_flight: self.in_flight,
        })
    }
}
