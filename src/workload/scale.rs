//! Scaling the canary and reverting the target on deletion.

use super::*;

impl Inner {
    pub(super) async fn set_replicas(
        &self,
        ctx: &Ctx,
        current: Option<i32>,
        replicas: i32,
    ) -> Result<(), WorkloadError> {
        if current == Some(replicas) {
            return Ok(());
        }
        let what = format!("deployment {}.{}", ctx.name, ctx.namespace);
        let patch = deployment::replicas_patch(replicas);
        io::merge_patch::<Deployment>(&ctx.client, &ctx.namespace, &ctx.name, &patch, &what).await
    }

    pub(super) async fn park(
        &self,
        ctx: &Ctx,
        ds: &DaemonSet,
        park: bool,
    ) -> Result<(), WorkloadError> {
        let has_key = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.node_selector.as_ref())
            .is_some_and(|n| n.contains_key(hash::SCALE_TO_ZERO_KEY));
        let done = if park {
            daemonset::parked(ds)
        } else {
            !has_key
        };
        if done {
            return Ok(());
        }
        let what = format!("daemonset {}.{}", ctx.name, ctx.namespace);
        let patch = daemonset::park_patch(park);
        io::merge_patch::<DaemonSet>(&ctx.client, &ctx.namespace, &ctx.name, &patch, &what).await
    }

    pub(super) async fn scale_up(&self, ctx: &Ctx) -> Result<(), WorkloadError> {
        match self.target(ctx)? {
            Workload::Deployment(d) => {
                let current = d.spec.as_ref().and_then(|s| s.replicas);
                let primary = match self.lookup(ctx, &ctx.primary()) {
                    Some(Workload::Deployment(p)) => p.spec.as_ref().and_then(|s| s.replicas),
                    _ => None,
                };
                let replicas =
                    deployment::scale_from_zero_replicas(current, &self.autoscaler(ctx), primary);
                self.set_replicas(ctx, current, replicas).await
            }
            Workload::DaemonSet(d) => self.park(ctx, &d, false).await,
        }
    }

    pub(super) async fn scale_to_zero(&self, ctx: &Ctx) -> Result<(), WorkloadError> {
        match self.target(ctx)? {
            Workload::Deployment(d) => {
                let current = d.spec.as_ref().and_then(|s| s.replicas);
                self.set_replicas(ctx, current, 0).await
            }
            Workload::DaemonSet(d) => self.park(ctx, &d, true).await,
        }
    }

    pub(super) async fn finalize(&self, ctx: &Ctx) -> Result<(), WorkloadError> {
        let target = self.target(ctx)?;
        match &target {
            Workload::Deployment(d) => {
                let current = d.spec.as_ref().and_then(|s| s.replicas);
                let replicas = match self.lookup(ctx, &ctx.primary()) {
                    Some(Workload::Deployment(p)) => {
                        p.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
                    }
                    _ => deployment::scale_from_zero_replicas(current, &self.autoscaler(ctx), None),
                };
                self.set_replicas(ctx, current, replicas).await?;
            }
            Workload::DaemonSet(d) => self.park(ctx, d, false).await?,
        }
        self.revert_apex(ctx, &target).await
    }

    /// A user's apex Service gets its own selector back; otherwise the apex
    /// selects the target's pods.
    pub(super) async fn revert_apex(
        &self,
        ctx: &Ctx,
        target: &Workload,
    ) -> Result<(), WorkloadError> {
        let ns = ctx.namespace.as_str();
        let apex = ctx.canary.spec.service_name().to_string();
        let Some(live) = get(&self.caches.services, ns, &apex) else {
            return Ok(());
        };
        let any_canary = live
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.controller == Some(true) && r.kind == "Canary");
        let restored = if any_canary {
            None
        } else {
            services::last_applied_selector(&live)
        };
        let selector = match restored {
            Some(Ok(selector)) => selector,
            Some(Err(_)) => {
                return Err(WorkloadError::LastApplied {
                    name: apex,
                    namespace: ctx.namespace.clone(),
                });
            }
            None => {
                let label = self.selector(ctx, target)?;
                BTreeMap::from([(label.key, label.value)])
            }
        };
        match services::selector_patch(&live, &selector) {
            Some(patch) => {
                let what = format!("service {apex}.{ns}");
                io::merge_patch::<Service>(&ctx.client, ns, &apex, &patch, &what).await
            }
            None => Ok(()),
        }
    }
}
