//! What makes a Canary impossible to drive, found before an actor starts:
//! each problem becomes one message for a Warning event and the status
//! condition, and the other canaries carry on.

use std::sync::Arc;

use kube::{Resource, ResourceExt};
use serin_actors::model::spec::CanarySpec;

use crate::api::Canary;
use crate::api::canary::TargetKind;
use crate::api::duration::parse_duration;
use crate::canary_spec::canary_spec;
use crate::k8s::{Caches, cache};
use crate::router;
use crate::settings::Settings;

/// Checks a Canary and maps it to the core spec.
pub fn validate(
    canary: &Arc<Canary>,
    caches: &Caches,
    settings: &Settings,
) -> Result<CanarySpec, String> {
    let mut spec = canary_spec(canary, &settings.mesh_provider).map_err(|e| e.to_string())?;
    if !settings.requests {
        // Answered requests could not be remembered: acting on one could
        // mean acting on it again after a restart.
        spec.request = None;
    }
    durations(canary)?;
    if settings.no_cross_namespace_refs {
        cross_namespace(canary)?;
    }
    if !router::supported(&spec.provider) {
        return Err(router::unsupported(&spec.provider));
    }
    router::check(canary, &spec.provider)?;
    target(canary, caches)?;
    shared_target(canary, caches)?;
    Ok(spec)
}

fn durations(canary: &Canary) -> Result<(), String> {
    let analysis = &canary.spec.analysis;
    if let Some(interval) = analysis.interval.as_deref() {
        parse_duration(interval).map_err(|e| format!("analysis.interval {interval:?}: {e}"))?;
    }
    for metric in analysis.metrics() {
        // The same reading the query uses: empty means `1m`.
        metric.interval_duration().map_err(|e| {
            format!(
                "metric {} interval {:?}: {e}",
                metric.name,
                metric.interval()
            )
        })?;
    }
    for hook in analysis.webhooks() {
        hook.timeout()
            .map_err(|e| format!("webhook {} timeout: {e}", hook.name))?;
    }
    Ok(())
}

/// Flagger's `verifyCanary` under `-no-cross-namespace-refs`.
fn cross_namespace(canary: &Canary) -> Result<(), String> {
    let ns = canary.namespace().unwrap_or_default();
    // An empty namespace means the Canary's, as where the references are read.
    let foreign =
        |other: &Option<String>| other.as_deref().is_some_and(|o| !o.is_empty() && o != ns);
    for metric in canary.spec.analysis.metrics() {
        if let Some(r) = &metric.template_ref
            && foreign(&r.namespace)
        {
            return Err(format!(
                "can't access metric template {}.{}, cross-namespace references are blocked",
                r.name,
                r.namespace.as_deref().unwrap_or_default()
            ));
        }
    }
    for alert in canary.spec.analysis.alerts() {
        let r = &alert.provider_ref;
        if foreign(&r.namespace) {
            return Err(format!(
                "can't access alert provider {}.{}, cross-namespace references are blocked",
                r.name,
                r.namespace.as_deref().unwrap_or_default()
            ));
        }
    }
    if let Some(r) = &canary.spec.upstream_ref
        && foreign(&r.namespace)
    {
        return Err(format!(
            "can't access gloo upstream {}.{}, cross-namespace references are blocked",
            r.name,
            r.namespace.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The target exists and is a kind this build drives.
fn target(canary: &Canary, caches: &Caches) -> Result<(), String> {
    let ns = canary.namespace().unwrap_or_default();
    let t = &canary.spec.target_ref;
    let found = match t.kind {
        TargetKind::Deployment => cache::get(&caches.deployments, &ns, &t.name).is_some(),
        TargetKind::DaemonSet => cache::get(&caches.daemonsets, &ns, &t.name).is_some(),
        TargetKind::Service => {
            return Err(format!(
                "target kind Service ({}) is not supported by this version of Serin",
                t.name
            ));
        }
    };
    if found {
        Ok(())
    } else {
        let resource = match t.kind {
            TargetKind::DaemonSet => "daemonsets.apps",
            _ => "deployments.apps",
        };
        Err(format!("{resource} \"{}\" not found", t.name))
    }
}

/// Flagger warns "Bad things will happen!" when two Canaries share a
/// target; Serin drives the oldest and refuses the others.
fn shared_target(canary: &Canary, caches: &Caches) -> Result<(), String> {
    let ns = canary.namespace().unwrap_or_default();
    let t = &canary.spec.target_ref;
    let mine = (canary.creation_timestamp(), canary.name_any());
    let older = caches.canaries.state().into_iter().find(|other| {
        other.namespace().as_deref() == Some(ns.as_str())
            && other.name_any() != canary.name_any()
            && other.spec.target_ref.kind == t.kind
            && other.spec.target_ref.name == t.name
            && other.meta().deletion_timestamp.is_none()
            && (other.creation_timestamp(), other.name_any()) < mine
    });
    match older {
        Some(other) => Err(format!(
            "target {} {}.{} is already driven by canary {}.{}",
            t.kind.as_str(),
            t.name,
            ns,
            other.name_any(),
            ns
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::runtime::reflector::{Store, store};
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::api::from_yaml_str;
    use crate::cli::OperatorFlags;

    const NS: &str = "apps";

    /// Caches holding `canaries`, Deployments `deployments` and DaemonSets
    /// `daemonsets`, all in [`NS`].
    fn caches(canaries: &[Canary], deployments: &[&str], daemonsets: &[&str]) -> Caches {
        fn filled<K>(objects: impl IntoIterator<Item = K>) -> Store<K>
        where
            K: kube::Resource<DynamicType = ()> + Clone + 'static,
        {
            let (reader, mut writer) = store();
            for obj in objects {
                writer.apply_watcher_event(&Event::Apply(obj));
            }
            reader
        }
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NS.to_string()),
            ..ObjectMeta::default()
        };
        Caches {
            canaries: filled(canaries.iter().cloned()),
            metric_templates: filled([]),
            alert_providers: filled([]),
            deployments: filled(deployments.iter().map(|n| Deployment {
                metadata: meta(n),
                ..Deployment::default()
            })),
            daemonsets: filled(daemonsets.iter().map(|n| DaemonSet {
                metadata: meta(n),
                ..DaemonSet::default()
            })),
            hpas: filled([]),
            services: filled([]),
            ingresses: filled([]),
            configmaps: filled([]),
            secrets: filled([]),
            httproutes: filled([]),
            trafficsplits: filled([]),
            virtualservices: filled([]),
            destinationrules: filled([]),
        }
    }

    fn settings(no_cross_namespace_refs: bool) -> Settings {
        let mut flags = OperatorFlags::defaults().expect("default flags");
        flags.mesh_provider = "kubernetes".to_string();
        flags.no_cross_namespace_refs = no_cross_namespace_refs;
        Settings::from_flags(&flags)
    }

    /// A Canary `name` in [`NS`] on `kind`/`target`; `extra` is YAML added
    /// under `spec` (indented by two spaces), `analysis` under
    /// `spec.analysis` (indented by four).
    fn canary_with(name: &str, kind: &str, target: &str, extra: &str, analysis: &str) -> Canary {
        let yaml = format!(
            "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: {name}\n  namespace: {NS}\n\
             spec:\n  targetRef:\n    apiVersion: apps/v1\n    kind: {kind}\n    name: {target}\n\
             {extra}  service:\n    port: 9898\n  analysis:\n    interval: 10s\n    iterations: 2\n{analysis}"
        );
        from_yaml_str(&yaml).unwrap_or_else(|e| panic!("bad test canary: {e}\n{yaml}"))
    }

    fn canary(analysis: &str) -> Canary {
        canary_with("podinfo", "Deployment", "podinfo", "", analysis)
    }

    fn refused(canary: &Canary, caches: &Caches, settings: &Settings) -> String {
        match validate(&Arc::new(canary.clone()), caches, settings) {
            Ok(spec) => panic!("{} was accepted: {spec:?}", canary.name_any()),
            Err(msg) => msg,
        }
    }

    fn assert_refused_with(canary: &Canary, caches: &Caches, settings: &Settings, want: &str) {
        let msg = refused(canary, caches, settings);
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
    }

    #[test]
    fn a_valid_deployment_canary_maps_to_the_core_spec() {
        let c = canary(
            "    metrics:\n      - name: request-success-rate\n        interval: 1m\n        thresholdRange:\n          min: 99\n",
        );
        let spec = validate(
            &Arc::new(c.clone()),
            &caches(&[], &["podinfo"], &[]),
            &settings(false),
        )
        .unwrap();
        assert_eq!(
            spec,
            canary_spec(&Arc::new(c.clone()), "kubernetes").unwrap()
        );
        assert_eq!(
            (spec.name.as_str(), spec.namespace.as_str()),
            ("podinfo", NS)
        );
        assert_eq!(
            (spec.target.kind.as_str(), spec.target.name.as_str()),
            ("Deployment", "podinfo")
        );
        // No `spec.provider`: `-mesh-provider` decides.
        assert_eq!(spec.provider, "kubernetes");
        assert_eq!(spec.analysis.interval, "10s");
        assert_eq!(spec.analysis.iterations, 2);
        assert_eq!(spec.analysis.metrics.len(), 1);
    }

    #[test]
    fn a_missing_target_is_named_as_the_api_server_would() {
        let c = canary_with("podinfo", "Deployment", "x", "", "");
        let msg = refused(&c, &caches(&[], &["podinfo"], &["x"]), &settings(false));
        assert_eq!(msg, r#"deployments.apps "x" not found"#);
        let ds = canary_with("podinfo", "DaemonSet", "gone", "", "");
        let msg = refused(&ds, &caches(&[], &["gone"], &[]), &settings(false));
        assert_eq!(msg, r#"daemonsets.apps "gone" not found"#);
    }

    #[test]
    fn a_daemonset_target_is_found() {
        let c = canary_with("podinfo-ds", "DaemonSet", "podinfo-ds", "", "");
        let spec = validate(
            &Arc::new(c.clone()),
            &caches(&[], &[], &["podinfo-ds"]),
            &settings(false),
        )
        .unwrap();
        assert_eq!(spec.target.kind, "DaemonSet");
        assert_eq!(spec.target.name, "podinfo-ds");
    }

    #[test]
    fn a_service_target_is_refused() {
        let c = canary_with("podinfo", "Service", "podinfo", "", "");
        let msg = refused(&c, &caches(&[], &["podinfo"], &[]), &settings(false));
        assert_eq!(
            msg,
            "target kind Service (podinfo) is not supported by this version of Serin"
        );
    }

    #[test]
    fn unparsable_durations_are_named() {
        let caches = caches(&[], &["podinfo"], &[]);
        let settings = settings(false);
        let mut c = canary("");
        c.spec.analysis.interval = Some("soon".to_string());
        let msg = refused(&c, &caches, &settings);
        assert!(msg.starts_with(r#"analysis.interval "soon": "#), "{msg}");

        let c = canary(
            "    metrics:\n      - name: errors\n        interval: 5 minutes\n        query: up\n",
        );
        let msg = refused(&c, &caches, &settings);
        assert!(
            msg.starts_with(r#"metric errors interval "5 minutes": "#),
            "{msg}"
        );

        let c = canary(
            "    webhooks:\n      - name: load\n        type: rollout\n        url: http://tester/\n        timeout: fast\n",
        );
        let msg = refused(&c, &caches, &settings);
        assert!(msg.starts_with("webhook load timeout: "), "{msg}");
        assert!(msg.contains("fast"), "the message shows the value: {msg}");
    }

    #[test]
    fn two_canaries_on_one_target_the_older_keeps_it() {
        let at = |name: &str, time: &str| {
            let mut c = canary_with(name, "Deployment", "podinfo", "", "");
            c.metadata.creation_timestamp =
                Some(serde_json::from_value(serde_json::json!(time)).expect("timestamp"));
            c
        };
        let older = at("first", "2024-01-01T00:00:00Z");
        let newer = at("second", "2024-02-01T00:00:00Z");
        let caches = caches(&[older.clone(), newer.clone()], &["podinfo"], &[]);
        assert!(validate(&Arc::new(older.clone()), &caches, &settings(false)).is_ok());
        let msg = refused(&newer, &caches, &settings(false));
        assert_eq!(
            msg,
            format!("target Deployment podinfo.{NS} is already driven by canary first.{NS}")
        );

        // A Canary on another target is not affected.
        let other = canary_with("third", "Deployment", "other", "", "");
        let with_other = self::caches(&[older.clone(), other.clone()], &["podinfo", "other"], &[]);
        assert!(validate(&Arc::new(other.clone()), &with_other, &settings(false)).is_ok());

        // An older Canary being deleted hands the target over.
        let mut deleting = older.clone();
        deleting.metadata.deletion_timestamp = newer.metadata.creation_timestamp.clone();
        let caches = self::caches(&[deleting, newer.clone()], &["podinfo"], &[]);
        assert!(validate(&Arc::new(newer.clone()), &caches, &settings(false)).is_ok());
    }

    #[test]
    fn no_cross_namespace_refs_blocks_other_namespaces() {
        let caches = caches(&[], &["podinfo"], &[]);
        let template = |ns: &str| {
            canary(&format!(
                "    metrics:\n      - name: errors\n        templateRef:\n          name: error-rate\n{ns}"
            ))
        };
        let alert = |ns: &str| {
            canary(&format!(
                "    alerts:\n      - name: team\n        providerRef:\n          name: slack\n{ns}"
            ))
        };
        let upstream = |ns: &str| {
            canary_with(
                "podinfo",
                "Deployment",
                "podinfo",
                &format!(
                    "  upstreamRef:\n    apiVersion: gloo.solo.io/v1\n    kind: Upstream\n    name: up\n{}",
                    ns.replace("          ", "    ")
                ),
                "",
            )
        };
        let other = "          namespace: flagger\n";
        let blocked = settings(true);
        assert_refused_with(
            &template(other),
            &caches,
            &blocked,
            "can't access metric template error-rate.flagger, cross-namespace references are blocked",
        );
        assert_refused_with(
            &alert(other),
            &caches,
            &blocked,
            "can't access alert provider slack.flagger, cross-namespace references are blocked",
        );
        assert_refused_with(
            &upstream(other),
            &caches,
            &blocked,
            "can't access gloo upstream up.flagger, cross-namespace references are blocked",
        );

        let same = format!("          namespace: {NS}\n");
        let empty = "          namespace: \"\"\n";
        for ns in ["", empty, same.as_str()] {
            for c in [template(ns), alert(ns), upstream(ns)] {
                assert!(
                    validate(&Arc::new(c.clone()), &caches, &blocked).is_ok(),
                    "{:?} is accepted with namespace {ns:?}: {:?}",
                    c.spec,
                    validate(&Arc::new(c.clone()), &caches, &blocked)
                );
            }
        }
        // Without the flag, other namespaces are fine.
        for c in [template(other), alert(other), upstream(other)] {
            assert!(validate(&Arc::new(c.clone()), &caches, &settings(false)).is_ok());
        }
    }

    #[test]
    fn a_provider_without_a_router_is_refused() {
        let caches = caches(&[], &["podinfo"], &[]);
        let c = canary_with(
            "podinfo",
            "Deployment",
            "podinfo",
            "  provider: contour\n",
            "",
        );
        assert_eq!(
            refused(&c, &caches, &settings(false)),
            router::unsupported("contour")
        );
        // `-mesh-provider` counts when the Canary names none.
        let mut flags = OperatorFlags::defaults().expect("default flags");
        flags.mesh_provider = "contour".to_string();
        let c = canary("");
        assert_eq!(
            refused(&c, &caches, &Settings::from_flags(&flags)),
            router::unsupported("contour")
        );
    }
}
