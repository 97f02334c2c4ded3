//! Shared actors in front of the router, metrics, webhook and notifier ports.
//!
//! Each handler hands the call to its [`Limiter`] and returns at once
//! (`ResponseFuture` is spawned by actix as its own task), so the mailbox
//! keeps draining while at most `port_concurrency` calls run and a bounded
//! number wait, and a port that panics kills one call, never the actor.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use tokio::time::Instant;

use super::{Limiter, Stats};
use crate::model::observe::{MetricAnswer, Routes, WebhookAnswer};
use crate::model::spec::MetricSpec;
use crate::ports::{
    CanaryKey, MetricQuery, MetricsPort, Notification, NotifierPort, PortError, RouterPort, Target,
    WebhookCall, WebhookPort,
};

/// Router `SetRoutes`.
#[derive(Message)]
#[rtype(result = "Result<(), PortError>")]
pub struct SetRoutes {
    pub target: Target,
    pub routes: Routes,
    pub deadline: Instant,
}

/// Router `Reconcile`.
#[derive(Message)]
#[rtype(result = "Result<(), PortError>")]
pub struct ReconcileRoutes {
    pub target: Target,
    pub deadline: Instant,
}

/// Router `GetRoutes`.
#[derive(Message)]
#[rtype(result = "Result<Routes, PortError>")]
pub struct GetRoutes {
    pub target: Target,
    pub deadline: Instant,
}

/// Run one metric check.
#[derive(Message)]
#[rtype(result = "Result<MetricAnswer, PortError>")]
pub struct RunMetric {
    pub query: MetricQuery,
    pub deadline: Instant,
}

/// Check that the metric providers are online.
#[derive(Message)]
#[rtype(result = "Result<Result<(), String>, PortError>")]
pub struct CheckProviders {
    pub key: CanaryKey,
    pub metrics: Vec<MetricSpec>,
    pub deadline: Instant,
}

/// Call one webhook.
#[derive(Message)]
#[rtype(result = "Result<WebhookAnswer, PortError>")]
pub struct CallWebhook {
    pub call: WebhookCall,
    pub deadline: Instant,
}

/// Fire-and-forget alert.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notify(pub Notification);

pub struct RouterActor {
    port: Arc<dyn RouterPort>,
    limiter: Limiter,
    mailbox: usize,
}

impl RouterActor {
    pub fn new(port: Arc<dyn RouterPort>, limiter: Limiter, mailbox: usize) -> Self {
        RouterActor {
            port,
            limiter,
            mailbox,
        }
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<SetRoutes> for RouterActor {
    type Result = ResponseFuture<Result<(), PortError>>;

    fn handle(&mut self, msg: SetRoutes, _: &mut Context<Self>) -> Self::Result {
        let port = self.port.clone();
        Box::pin(self.limiter.run(msg.deadline, move || {
            port.set_routes(&msg.target, msg.routes, msg.deadline)
        }))
    }
}

impl Handler<ReconcileRoutes> for RouterActor {
    type Result = ResponseFuture<Result<(), PortError>>;

    fn handle(&mut self, msg: ReconcileRoutes, _: &mut Context<Self>) -> Self::Result {
        let port = self.port.clone();
        Box::pin(self.limiter.run(msg.deadline, move || {
            port.reconcile(&msg.target, msg.deadline)
        }))
    }
}

impl Handler<GetRoutes> for RouterActor {
    type Result = ResponseFuture<Result<Routes, PortError>>;

    fn handle(&mut self, msg: GetRoutes, _: &mut Context<Self>) -> Self::Result {
        let port = self.port.clone();
        Box::pin(self.limiter.run(msg.deadline, move || {
            port.get_routes(&msg.target, msg.deadline)
        }))
    }
}

pub struct MetricsActor {
    port: Arc<dyn MetricsPort>,
    limiter: Limiter,
    mailbox: usize,
}

impl MetricsActor {
    pub fn new(port: Arc<dyn MetricsPort>, limiter: Limiter, mailbox: usize) -> Self {
        MetricsActor {
            port,
            limiter,
            mailbox,
        }
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<RunMetric> for MetricsActor {
    type Result = ResponseFuture<Result<MetricAnswer, PortError>>;

    fn handle(&mut self, msg: RunMetric, _: &mut Context<Self>) -> Self::Result {
        let port = self.port.clone();
        Box::pin(
            self.limiter
                .run(msg.deadline, move || port.check(&msg.query, msg.deadline)),
        )
    }
}

impl Handler<CheckProviders> for MetricsActor {
    type Result = ResponseFuture<Result<Result<(), String>, PortError>>;

    fn handle(&mut self, msg: CheckProviders, _: &mut Context<Self>) -> Self::Result {
        let port = self.port.clone();
        Box::pin(self.limiter.run(msg.deadline, move || {
            port.providers_available(&msg.key, &msg.metrics, msg.deadline)
        }))
    }
}

pub struct WebhookActor {
    port: Arc<dyn WebhookPort>,
    limiter: Limiter,
    mailbox: usize,
}

impl WebhookActor {
    pub fn new(port: Arc<dyn WebhookPort>, limiter: Limiter, mailbox: usize) -> Self {
        WebhookActor {
            port,
            limiter,
            mailbox,
        }
    }
}

impl Actor for WebhookActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<CallWebhook> for WebhookActor {
    type Result = ResponseFuture<Result<WebhookAnswer, PortError>>;

    fn handle(&mut self, msg: CallWebhook, _: &mut Context<Self>) -> Self::Result {
        let port = self.port.clone();
        Box::pin(
            self.limiter
                .run(msg.deadline, move || port.call(&msg.call, msg.deadline)),
        )
    }
}

pub struct NotifierActor {
    port: Arc<dyn NotifierPort>,
    limiter: Limiter,
    timeout: Duration,
    stats: Arc<Stats>,
    mailbox: usize,
}

impl NotifierActor {
    pub fn new(
        port: Arc<dyn NotifierPort>,
        limiter: Limiter,
        timeout: Duration,
        stats: Arc<Stats>,
        mailbox: usize,
    ) -> Self {
        NotifierActor {
            port,
            limiter,
            timeout,
            stats,
            mailbox,
        }
    }
}

impl Actor for NotifierActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Notify> for NotifierActor {
    type Result = ();

    fn handle(&mut self, Notify(notification): Notify, _: &mut Context<Self>) {
        let port = self.port.clone();
        let deadline = Instant::now() + self.timeout;
        let stats = self.stats.clone();
        let key = notification.key.clone();
        let call = self
            .limiter
            .run(deadline, move || port.send(&notification, deadline));
        // Nobody waits for the result: a slow provider only costs a slot. A
        // separate task, so a panicking provider cannot take this actor down.
        actix_rt::spawn(async move {
            if let Err(err) = call.await {
                Stats::bump(&stats.notifications_dropped);
                tracing::warn!(canary = %key, error = %err, "notification not sent");
            }
        });
    }
}
