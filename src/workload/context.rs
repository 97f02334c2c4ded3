//! One call's view of a Canary and the cache lookups every operation shares.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkloadKind {
    Deployment,
    DaemonSet,
}

impl WorkloadKind {
    pub(super) fn noun(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }

    pub(super) fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments.apps",
            WorkloadKind::DaemonSet => "daemonsets.apps",
        }
    }
}

/// A target or primary as the cache holds it.
#[derive(Clone)]
pub(super) enum Workload {
    Deployment(Arc<Deployment>),
    DaemonSet(Arc<DaemonSet>),
}

impl Workload {
    pub(super) fn match_labels(&self) -> Option<&Labels> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref()?.selector.match_labels.as_ref(),
            Workload::DaemonSet(d) => d.spec.as_ref()?.selector.match_labels.as_ref(),
        }
    }

    pub(super) fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    pub(super) fn pod_spec(&self) -> PodSpec {
        self.template()
            .and_then(|t| t.spec.clone())
            .unwrap_or_default()
    }
}

/// One call's view of a Canary: the object, its target and the client to write with.
pub(super) struct Ctx {
    pub(super) canary: Arc<Canary>,
    pub(super) namespace: String,
    /// `targetRef.name`.
    pub(super) name: String,
    pub(super) kind: WorkloadKind,
    pub(super) client: kube::Client,
}

impl Ctx {
    pub(super) fn canary_name(&self) -> &str {
        self.canary.metadata.name.as_deref().unwrap_or_default()
    }

    pub(super) fn primary(&self) -> String {
        primary_name(&self.name)
    }

    pub(super) fn not_found(&self, name: &str) -> WorkloadError {
        WorkloadError::NotFound {
            resource: self.kind.resource(),
            name: name.to_string(),
        }
    }

    pub(super) fn autoscaled(&self) -> bool {
        self.canary.spec.autoscaler_ref.is_some()
    }
}

pub(super) fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
}

impl Inner {
    /// The workload of the Canary the step decided on (its source object,
    /// never a newer or older copy from the cache).
    pub(super) fn target_context(&self, target: &Target) -> Result<Ctx, WorkloadError> {
        let key = &target.key;
        let canary =
            target
                .source
                .get::<Canary>()
                .ok_or_else(|| WorkloadError::CanaryNotFound {
                    name: key.name.clone(),
                    namespace: key.namespace.clone(),
                })?;
        let client = self.clients.for_priority(target.priority).clone();
        self.context(canary, &target.target.kind, &target.target.name, client)
    }

    pub(super) fn context(
        &self,
        canary: Arc<Canary>,
        kind: &str,
        name: &str,
        client: kube::Client,
    ) -> Result<Ctx, WorkloadError> {
        let kind = match kind {
            "Deployment" => WorkloadKind::Deployment,
            "DaemonSet" => WorkloadKind::DaemonSet,
            other => return Err(WorkloadError::UnsupportedKind(other.to_string())),
        };
        Ok(Ctx {
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            canary,
            name: name.to_string(),
            kind,
            client,
        })
    }

    pub(super) fn lookup(&self, ctx: &Ctx, name: &str) -> Option<Workload> {
        match ctx.kind {
            WorkloadKind::Deployment => {
                get(&self.caches.deployments, &ctx.namespace, name).map(Workload::Deployment)
            }
            WorkloadKind::DaemonSet => {
                get(&self.caches.daemonsets, &ctx.namespace, name).map(Workload::DaemonSet)
            }
        }
    }

    pub(super) fn target(&self, ctx: &Ctx) -> Result<Workload, WorkloadError> {
        self.lookup(ctx, &ctx.name)
            .ok_or_else(|| ctx.not_found(&ctx.name))
    }

    pub(super) fn selector(
        &self,
        ctx: &Ctx,
        target: &Workload,
    ) -> Result<SelectorLabel, WorkloadError> {
        let candidates = &self.settings.selector_labels;
        selector_label(target.match_labels(), candidates).ok_or_else(|| {
            WorkloadError::NoSelectorLabel {
                kind: ctx.kind.noun(),
                name: ctx.name.clone(),
                namespace: ctx.namespace.clone(),
                labels: metadata::go_list(candidates),
            }
        })
    }

    pub(super) fn owner(&self, ctx: &Ctx) -> Result<OwnerReference, WorkloadError> {
        metadata::canary_ref(&ctx.canary).ok_or_else(|| WorkloadError::CanaryWithoutUid {
            name: ctx.canary_name().to_string(),
            namespace: ctx.namespace.clone(),
        })
    }

    /// `status.trackedConfigs` for the target's pod spec; empty when off.
    pub(super) fn tracked(
        &self,
        ctx: &Ctx,
        pod: &PodSpec,
    ) -> Result<BTreeMap<String, String>, WorkloadError> {
        if !self.settings.config_tracking {
            return Ok(BTreeMap::new());
        }
        let refs = config::referenced_configs(pod);
        let tracked = config::tracked_configs(&refs, &ctx.namespace, |r| {
            self.lookup_config(ctx, r.kind, &r.name)
        })?;
        Ok(tracked)
    }

    pub(super) fn lookup_config(&self, ctx: &Ctx, kind: ConfigKind, name: &str) -> Lookup {
        match kind {
            ConfigKind::ConfigMap => config::lookup_configmap(
                get(&self.caches.configmaps, &ctx.namespace, name).as_deref(),
            ),
            ConfigKind::Secret => {
                config::lookup_secret(get(&self.caches.secrets, &ctx.namespace, name).as_deref())
            }
        }
    }

    pub(super) fn primary_inputs<'a>(
        &'a self,
        ctx: &'a Ctx,
        selector: &'a SelectorLabel,
        tracked: &'a BTreeSet<(ConfigKind, String)>,
        id: &'a str,
        owner: &OwnerReference,
    ) -> PrimaryInputs<'a> {
        PrimaryInputs {
            namespace: &ctx.namespace,
            owner: owner.clone(),
            include_prefixes: &self.settings.include_label_prefixes,
            template: TemplateInputs {
                target_name: &ctx.name,
                selector,
                selector_labels: &self.settings.selector_labels,
                tracked,
                flagger_id: id,
            },
        }
    }

    pub(super) fn autoscaler(&self, ctx: &Ctx) -> Autoscaler {
        match ctx.canary.spec.autoscaler_ref.as_ref() {
            None => Autoscaler::None,
            Some(s) if s.kind == AutoscalerKind::HorizontalPodAutoscaler => Autoscaler::Hpa {
                min_replicas: get(&self.caches.hpas, &ctx.namespace, &s.name)
                    .and_then(|h| h.spec.min_replicas),
            },
            Some(_) => Autoscaler::Other,
        }
    }
}
