//! Bootstrap (Services, primary, primary HPA, config copies) and promotion.

use super::*;

impl Inner {
    /// Creates or refreshes the `-primary` copies whose cached checksum
    /// differs from the source's.
    pub(super) async fn sync_config_copies(
        &self,
        ctx: &Ctx,
        tracked: &BTreeMap<String, String>,
        owner: &OwnerReference,
    ) -> Result<(), WorkloadError> {
        let prefixes = &self.settings.include_label_prefixes;
        for (kind, name) in config::tracked_set(tracked) {
            let key = ConfigRef {
                kind,
                name: name.clone(),
                optional: false,
            }
            .key();
            let checksum = tracked.get(&key).map(String::as_str).unwrap_or_default();
            let copy_name = format!("{name}-primary");
            let copy = self.lookup_config(ctx, kind, &copy_name);
            if config::copy_is_current(checksum, Some(&copy)) {
                continue;
            }
            let ns = ctx.namespace.as_str();
            match kind {
                ConfigKind::ConfigMap => {
                    let what = format!("configmap {name}.{ns}");
                    let Some(source) =
                        io::get_opt::<ConfigMap>(&ctx.client, ns, &name, &what).await?
                    else {
                        continue;
                    };
                    let copy = config::primary_configmap(&source, owner.clone(), prefixes);
                    let what = format!("ConfigMap {copy_name}");
                    io::replace_or_create(&ctx.client, ns, &copy_name, &copy, &what).await?;
                }
                ConfigKind::Secret => {
                    let what = format!("secret {name}.{ns}");
                    let Some(source) = io::get_opt::<Secret>(&ctx.client, ns, &name, &what).await?
                    else {
                        continue;
                    };
                    let copy = config::primary_secret(&source, owner.clone(), prefixes);
                    let what = format!("Secret {copy_name}");
                    io::replace_or_create(&ctx.client, ns, &copy_name, &copy, &what).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn bootstrap(&self, ctx: &Ctx) -> Result<(), WorkloadError> {
        let target = self.target(ctx)?;
        let selector = self.selector(ctx, &target)?;
        if let Workload::DaemonSet(ds) = &target
            && let Some(strategy) = daemonset::unsupported_strategy(ds)
        {
            return Err(WorkloadError::DaemonSetStrategy {
                name: ctx.name.clone(),
                namespace: ctx.namespace.clone(),
                strategy,
            });
        }
        let owner = self.owner(ctx)?;
        let svc_name = ctx.canary.spec.service_name().to_string();
        let value = selector.value.clone();
        // Flagger's order: canary and primary Services, primary workload,
        // primary HPA, then the apex Service.
        self.reconcile_service(
            ctx,
            &target,
            &selector,
            format!("{svc_name}-canary"),
            value.clone(),
            |s| s.canary.as_ref(),
            &owner,
        )
        .await?;
        self.reconcile_service(
            ctx,
            &target,
            &selector,
            format!("{svc_name}-primary"),
            selector.primary_value(),
            |s| s.primary.as_ref(),
            &owner,
        )
        .await?;
        if self.lookup(ctx, &ctx.primary()).is_none() {
            self.create_primary(ctx, &target, &selector, &owner).await?;
        }
        if ctx.kind == WorkloadKind::Deployment {
            self.reconcile_primary_hpa(ctx, true).await?;
        }
        self.reconcile_service(
            ctx,
            &target,
            &selector,
            svc_name,
            selector.primary_value(),
            |s| s.apex.as_ref(),
            &owner,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn reconcile_service(
        &self,
        ctx: &Ctx,
        target: &Workload,
        selector: &SelectorLabel,
        name: String,
        selector_value: String,
        custom: impl Fn(&CanaryService) -> Option<&CustomMetadata>,
        owner: &OwnerReference,
    ) -> Result<(), WorkloadError> {
        let Some(svc) = ctx.canary.spec.service.as_ref() else {
            return Ok(());
        };
        let discovered = if svc.port_discovery() {
            services::discover_ports(&target.pod_spec(), svc)
        } else {
            BTreeMap::new()
        };
        let plan = ServicePlan {
            name,
            selector_key: &selector.key,
            selector_value,
            custom: custom(svc),
        };
        let ns = ctx.namespace.as_str();
        let what = format!("service {}.{ns}", plan.name);
        match get(&self.caches.services, ns, &plan.name) {
            None => {
                let obj = services::new_service(&plan, svc, &discovered, ns, owner.clone());
                io::create(&ctx.client, ns, &obj, &what).await
            }
            Some(live) => {
                match services::service_patch(&live, &plan, svc, &discovered, ctx.canary_name()) {
                    Some(patch) => {
                        io::merge_patch::<Service>(&ctx.client, ns, &plan.name, &patch, &what).await
                    }
                    None => Ok(()),
                }
            }
        }
    }

    pub(super) async fn create_primary(
        &self,
        ctx: &Ctx,
        target: &Workload,
        selector: &SelectorLabel,
        owner: &OwnerReference,
    ) -> Result<(), WorkloadError> {
        let tracked = self.tracked(ctx, &target.pod_spec())?;
        self.sync_config_copies(ctx, &tracked, owner).await?;
        let tracked = config::tracked_set(&tracked);
        let id = metadata::new_flagger_id();
        let input = self.primary_inputs(ctx, selector, &tracked, &id, owner);
        let ns = ctx.namespace.as_str();
        let what = format!("{} {}.{ns}", ctx.kind.noun(), ctx.primary());
        match target {
            Workload::Deployment(d) => {
                let obj = deployment::new_primary_deployment(d, &input);
                io::create(&ctx.client, ns, &obj, &what).await
            }
            Workload::DaemonSet(d) => {
                let obj = daemonset::new_primary_daemonset(d, &input);
                io::create(&ctx.client, ns, &obj, &what).await
            }
        }
    }

    /// Creates the primary HPA when missing; with `init` false also syncs it.
    pub(super) async fn reconcile_primary_hpa(
        &self,
        ctx: &Ctx,
        init: bool,
    ) -> Result<(), WorkloadError> {
        let Some(scaler) = ctx.canary.spec.autoscaler_ref.as_ref() else {
            return Ok(());
        };
        if ctx.kind != WorkloadKind::Deployment {
            return Ok(());
        }
        if scaler.kind != AutoscalerKind::HorizontalPodAutoscaler {
            return Err(WorkloadError::UnsupportedAutoscaler(format!(
                "{:?}",
                scaler.kind
            )));
        }
        let ns = ctx.namespace.as_str();
        let primary_hpa = format!("{}-primary", scaler.name);
        let live = get(&self.caches.hpas, ns, &primary_hpa);
        if init && live.is_some() {
            return Ok(());
        }
        let target =
            get(&self.caches.hpas, ns, &scaler.name).ok_or_else(|| WorkloadError::NotFound {
                resource: "horizontalpodautoscalers.autoscaling",
                name: scaler.name.clone(),
            })?;
        let owner = self.owner(ctx)?;
        let overrides = scaler.primary_scaler_replicas.as_ref();
        let desired = hpa::new_primary_hpa(&target, ns, owner, &ctx.primary(), overrides);
        let what = format!("HorizontalPodAutoscaler {primary_hpa}.{ns}");
        match live {
            None => io::create(&ctx.client, ns, &desired, &what).await,
            Some(live) => match hpa::hpa_patch(&live, &desired) {
                Some(patch) => {
                    io::merge_patch::<HorizontalPodAutoscaler>(
                        &ctx.client,
                        ns,
                        &primary_hpa,
                        &patch,
                        &what,
                    )
                    .await
                }
                None => Ok(()),
            },
        }
    }

    pub(super) async fn promote(&self, ctx: &Ctx) -> Result<(), WorkloadError> {
        let target = self.target(ctx)?;
        let primary = self
            .lookup(ctx, &ctx.primary())
            .ok_or_else(|| ctx.not_found(&ctx.primary()))?;
        let selector = self.selector(ctx, &target)?;
        let owner = self.owner(ctx)?;
        let tracked = self.tracked(ctx, &target.pod_spec())?;
        self.sync_config_copies(ctx, &tracked, &owner).await?;
        let tracked = config::tracked_set(&tracked);
        let id = metadata::new_flagger_id();
        let input = self.primary_inputs(ctx, &selector, &tracked, &id, &owner);
        let ns = ctx.namespace.as_str();
        let primary_name = ctx.primary();
        let what = format!("{} {primary_name}.{ns} template spec", ctx.kind.noun());
        match (&target, &primary) {
            (Workload::Deployment(t), Workload::Deployment(p)) => {
                if let Some(patch) = deployment::promotion_patch(t, p, &input, ctx.autoscaled()) {
                    io::merge_patch::<Deployment>(&ctx.client, ns, &primary_name, &patch, &what)
                        .await?;
                }
            }
            (Workload::DaemonSet(t), Workload::DaemonSet(p)) => {
                if let Some(patch) = daemonset::promotion_patch(t, p, &input) {
                    io::merge_patch::<DaemonSet>(&ctx.client, ns, &primary_name, &patch, &what)
                        .await?;
                }
            }
            _ => return Err(ctx.not_found(&primary_name)),
        }
        Ok(())
    }
}
