//! Revision and readiness, from the caches only.

use super::*;

impl Inner {
    pub(super) fn observe(&self, ctx: &Ctx) -> Result<WorkloadState, WorkloadError> {
        let target = self.target(ctx)?;
        let template = target.template().cloned().unwrap_or_default();
        let spec_hash = match ctx.kind {
            WorkloadKind::Deployment => hash::template_hash(&template),
            WorkloadKind::DaemonSet => hash::daemonset_template_hash(&template),
        };
        let tracked_configs = self.tracked(ctx, &target.pod_spec())?;
        let spec = &ctx.canary.spec;
        let last_transition = ctx
            .canary
            .status
            .as_ref()
            .and_then(|s| s.last_transition_time.as_ref())
            .map(|t| Timestamp(t.0.as_second()));
        let check = |role, threshold| Check {
            role,
            namespace: &ctx.namespace,
            threshold,
            deadline_seconds: spec.progress_deadline_seconds(),
            last_transition,
            now: now(),
        };
        let readiness = |w: &Workload, check: Check<'_>| match w {
            Workload::Deployment(d) => readiness::deployment_readiness(d, check),
            Workload::DaemonSet(d) => readiness::daemonset_readiness(d, check),
        };
        let primary = match self.lookup(ctx, &ctx.primary()) {
            Some(p) => readiness(
                &p,
                check(Role::Primary, spec.analysis.primary_ready_threshold()),
            ),
            None => readiness::primary_pending(&ctx.primary(), &ctx.namespace, ctx.kind.noun()),
        };
        let canary: Readiness = readiness(
            &target,
            check(Role::Canary, spec.analysis.canary_ready_threshold()),
        );
        Ok(WorkloadState {
            revision: Revision {
                spec_hash,
                tracked_configs,
            },
            primary,
            canary,
        })
    }
}
