//! Chat notifications (`NotifierPort`): Flagger's `alert()` routing and its
//! Slack, MS Teams, Discord, Rocket.Chat and Google Chat payloads.
//!
//! A Canary with `analysis.alerts` notifies each `AlertProvider` whose
//! severity admits the alert; one without notifies the global notifier of
//! the `-slack-*`/`-msteams-*` flags. Providers are posted to concurrently;
//! every failure is reported in the one error the port returns.

mod discord;
mod error;
mod gchat;
mod global;
mod http;
mod message;
mod msteams;
mod rocket;
mod route;
mod slack;
mod target;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use futures::future::join_all;
use serin_actors::model::spec::AlertRef;
use serin_actors::ports::{Notification, NotifierPort, PortError, PortFuture};
use tokio::time::Instant;

pub use error::NotifyError;
pub use global::GlobalNotifiers;

use crate::k8s::Caches;
use http::Http;
use message::Message;

/// The `NotifierPort` of the operator. Cheap to clone.
#[derive(Clone)]
pub struct Notifiers {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    caches: Caches,
    global: GlobalNotifiers,
    http: Http,
}

impl Notifiers {
    /// `client` reads the Secrets of `AlertProvider.spec.secretRef`.
    pub fn new(client: kube::Client, caches: Caches, global: GlobalNotifiers) -> Notifiers {
        Notifiers::with_http(client, caches, global, Http::new())
    }

    fn with_http(
        client: kube::Client,
        caches: Caches,
        global: GlobalNotifiers,
        http: Http,
    ) -> Notifiers {
        Notifiers {
            inner: Arc::new(Inner {
                client,
                caches,
                global,
                http,
            }),
        }
    }
}

impl NotifierPort for Notifiers {
    fn send(&self, notification: &Notification, deadline: Instant) -> PortFuture<()> {
        let inner = self.inner.clone();
        let notification = notification.clone();
        Box::pin(async move {
            tokio::time::timeout_at(deadline, inner.deliver(notification, deadline))
                .await
                .unwrap_or(Err(PortError::Timeout))
        })
    }
}

impl Inner {
    async fn deliver(&self, n: Notification, deadline: Instant) -> Result<(), PortError> {
        let mut fields = Vec::with_capacity(n.fields.len() + 1);
        if !self.global.cluster_name.is_empty() {
            fields.push(("Cluster".to_owned(), self.global.cluster_name.clone()));
        }
        fields.extend(n.fields);
        let msg = Message {
            name: n.key.name,
            namespace: n.key.namespace,
            text: n.alert.message,
            severity: n.alert.severity,
            fields,
        };
        if n.providers.is_empty() {
            return self.deliver_global(&msg, deadline).await;
        }
        let admitted = n
            .providers
            .iter()
            .filter(|alert| route::admits(&alert.severity, msg.severity));
        let sends = admitted.map(|alert| self.deliver_to(alert, &msg, deadline));
        let errors = join_all(sends)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        error::combine(errors)
    }

    async fn deliver_global(&self, msg: &Message, deadline: Instant) -> Result<(), PortError> {
        let Some(target) = &self.global.target else {
            tracing::debug!(canary = %msg.title(), "no global notifier configured, alert not sent");
            return Ok(());
        };
        let payload = target.payload(msg);
        Ok(self.http.post(target, &payload, deadline).await?)
    }

    async fn deliver_to(
        &self,
        alert: &AlertRef,
        msg: &Message,
        deadline: Instant,
    ) -> Result<(), NotifyError> {
        let namespace = route::provider_namespace(alert, &msg.namespace);
        let target = route::resolve(&self.caches, &self.client, alert, namespace).await?;
        let Some(target) = target else {
            tracing::debug!(
                canary = %msg.title(),
                provider = %format!("{}.{namespace}", alert.provider_name),
                "alert provider has no address, alert not sent"
            );
            return Ok(());
        };
        let payload = target.payload(msg);
        self.http
            .post(&target, &payload, deadline)
            .await
            .map_err(|err| NotifyError::Provider {
                name: alert.provider_name.clone(),
                namespace: namespace.to_owned(),
                source: Box::new(err),
            })
    }
}
