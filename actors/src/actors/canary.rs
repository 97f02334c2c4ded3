//! One actor per Canary: owns spec and status, runs analysis steps.
//!
//! The interval timer exists only while a run is in flight; an idle canary
//! (Initialized, Succeeded, Failed) sleeps until a watch sends
//! [`TargetChanged`] or [`SpecChanged`], which step it at once. During a run
//! those messages only update the spec/interval and the timer does the rest.
//! Steps never overlap: a timer tick that finds a step running is dropped, a
//! message-driven one is queued.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult, SpawnHandle,
    Supervised, WrapFuture,
};
use tokio::time::Instant;

use super::step::{self, StepError};
use super::{Services, Stats};
use crate::model::spec::CanarySpec;
use crate::model::status::{CanaryStatus, Phase};
use crate::ports::CanaryKey;

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
}

impl CanaryActor {
    /// `status` is the last persisted one (default for a new Canary).
    pub fn new(spec: Arc<CanarySpec>, status: CanaryStatus, services: Services) -> Self {
        CanaryActor {
            key: CanaryKey::of(&spec),
            spec,
            status,
            services,
            timer: None,
            in_flight: false,
            queued: false,
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
        if self.in_flight {
            match cause {
                Cause::Timer => Stats::bump(&self.services.stats.skipped_ticks),
                Cause::Wake => self.queued = true,
            }
            return;
        }
        self.in_flight = true;
        let fut = step::Timed::new(
            step::run(
                self.services.clone(),
                self.spec.clone(),
                self.status.clone(),
            ),
            self.services.stats.clone(),
        );
        ctx.spawn(
            fut.into_actor(self)
                .map(|result, act, ctx| act.finish_step(result, ctx)),
        );
    }

    fn finish_step(
        &mut self,
        result: Result<Option<CanaryStatus>, StepError>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = false;
        match result {
            Ok(Some(status)) => self.status = status,
            Ok(None) => {}
            Err(err) => {
                Stats::bump(&self.services.stats.failed_ticks);
                tracing::warn!(canary = %self.key, error = %err, "analysis step failed");
            }
        }
        self.rearm(ctx);
        if std::mem::take(&mut self.queued) {
            self.request_step(Cause::Wake, ctx);
        }
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
        // One step at start: initialises a new Canary, resumes a rebuilt one.
        self.request_step(Cause::Wake, ctx);
    }
}

impl Supervised for CanaryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // actix reuses this struct; the old context's timers and futures are gone.
        self.timer = None;
        self.in_flight = false;
        self.queued = false;
    }
}

impl Handler<SpecChanged> for CanaryActor {
    type Result = ();

    fn handle(&mut self, SpecChanged(spec): SpecChanged, ctx: &mut Context<Self>) {
        let idle = self.timer.is_none();
        self.spec = spec;
        // Picks up a new interval; an idle canary has no timer to re-arm.
        self.rearm(ctx);
        if idle {
            self.request_step(Cause::Wake, ctx);
        }
    }
}

impl Handler<TargetChanged> for CanaryActor {
    type Result = ();

    fn handle(&mut self, _: TargetChanged, ctx: &mut Context<Self>) {
        // During a run the next timer tick sees the change (as in Flagger);
        // stepping now would advance the weight off schedule.
        if self.timer.is_none() {
            self.request_step(Cause::Wake, ctx);
        }
    }
}

impl Handler<Shutdown> for CanaryActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        actix::ActorContext::stop(ctx);
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
