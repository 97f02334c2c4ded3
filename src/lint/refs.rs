//! Checks across the given objects: references from Canaries to
//! MetricTemplates and AlertProviders, queries rendered for the Canaries
//! that use them, objects defined twice, targets driven twice.

use std::collections::HashMap;

use super::document::{Kind, Object, Resource};
use super::report::Finding;
use crate::api::MetricProviderType;
use crate::api::canary::CanaryMetric;
use crate::api::{Canary, MetricTemplate};
use crate::metrics::render::{Model, RenderError, render};
use crate::metrics::target_names;
use crate::metrics::{externalmetrics, keptn};

type Key<'a> = (Kind, &'a str, &'a str);

pub(crate) fn check(objects: &[Object], out: &mut Vec<Finding>) {
    duplicates(objects, out);
    shared_targets(objects, out);
    // A template whose query fails for any canary is reported once, on
    // `spec.query`; only canary-specific failures go on the Canary.
    let mut renders = HashMap::new();
    for (i, object) in objects.iter().enumerate() {
        if let Some(Resource::Template(t)) = &object.resource {
            let ok = match render_sample(t, &object.namespace).map_err(|e| e.to_string()) {
                Ok(query) => match query_form(t, &query) {
                    Ok(()) => true,
                    Err(e) => {
                        out.push(object.doc.error("spec.query", e));
                        false
                    }
                },
                Err(e) => {
                    out.push(object.doc.error("spec.query", e));
                    false
                }
            };
            renders.insert(i, ok);
        }
    }
    for object in objects {
        if let Some(Resource::Canary(c)) = &object.resource {
            metrics(object, c, objects, &renders, out);
            alerts(object, c, objects, out);
        }
    }
}

/// The providers whose queries have a form of their own: the operator's
/// parsers, on the rendered query.
fn query_form(template: &MetricTemplate, rendered: &str) -> Result<(), String> {
    match template.spec.provider.type_ {
        MetricProviderType::Keptn => keptn::parse_query(rendered).map(|_| ()),
        MetricProviderType::Externalmetrics => externalmetrics::parse_query(rendered).map(|_| ()),
        _ => Ok(()),
    }
}

/// The object a reference names: one in the referring object's file first,
/// else the last one given (what applying them all would leave).
fn find<'a>(objects: &'a [Object], from: &Object, key: Key<'_>) -> Option<(usize, &'a Object)> {
    let all: Vec<(usize, &Object)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| (o.kind, o.namespace.as_str(), o.name.as_str()) == key)
        .collect();
    all.iter()
        .rev()
        .find(|(_, o)| o.doc.file == from.doc.file)
        .or(all.last())
        .copied()
}

fn metrics(
    object: &Object,
    canary: &Canary,
    objects: &[Object],
    renders: &HashMap<usize, bool>,
    out: &mut Vec<Finding>,
) {
    for (i, metric) in canary.spec.analysis.metrics().iter().enumerate() {
        let Some(reference) = &metric.template_ref else {
            continue;
        };
        let at = format!("spec.analysis.metrics[{i}]");
        let namespace = reference.namespace_or(&object.namespace);
        let key = (Kind::MetricTemplate, namespace, reference.name.as_str());
        let Some((index, template)) = find(objects, object, key) else {
            out.push(object.doc.warning(
                &format!("{at}.templateRef"),
                format!(
                    "metric template {}.{namespace} is not among the given files; the operator resolves it in the cluster",
                    reference.name
                ),
            ));
            continue;
        };
        // A template with errors of its own has them reported already.
        let Some(Resource::Template(t)) = &template.resource else {
            continue;
        };
        if renders.get(&index) != Some(&true) {
            continue;
        }
        let model = canary_model(canary, &object.namespace, metric);
        if let Err(e) = render(&t.spec.query, &model) {
            let name = format!("{}.{namespace}", reference.name);
            let place = template.doc.place("spec.query");
            out.push(match missing_variable(&e) {
                Some(var) => object.doc.error(
                    &format!("{at}.templateVariables"),
                    format!("metric template {name} ({place}) uses variables.{var}, which this metric does not set: {e}"),
                ),
                None => object.doc.error(
                    &format!("{at}.templateRef"),
                    format!("metric template {name} ({place}) query render error: {e}"),
                ),
            });
        }
    }
}

fn alerts(object: &Object, canary: &Canary, objects: &[Object], out: &mut Vec<Finding>) {
    for (i, alert) in canary.spec.analysis.alerts().iter().enumerate() {
        let reference = &alert.provider_ref;
        let namespace = reference.namespace_or(&object.namespace);
        let key = (Kind::AlertProvider, namespace, reference.name.as_str());
        if find(objects, object, key).is_none() {
            out.push(object.doc.warning(
                &format!("spec.analysis.alerts[{i}].providerRef"),
                format!(
                    "alert provider {}.{namespace} is not among the given files; the operator resolves it in the cluster",
                    reference.name
                ),
            ));
        }
    }
}

/// The query model the operator renders `metric` with for `canary`.
fn canary_model(canary: &Canary, namespace: &str, metric: &CanaryMetric) -> Model {
    let mut model = Model {
        name: canary.metadata.name.clone().unwrap_or_default(),
        namespace: namespace.to_string(),
        interval: metric.interval().to_string(),
        variables: metric.template_variables.clone().unwrap_or_default(),
        ..Model::default()
    };
    target_names(canary, &mut model);
    model
}

/// Renders for a sample Canary `podinfo` on Deployment `podinfo`, setting
/// each variable the query asks for: what is left are the errors no
/// Canary can avoid.
fn render_sample(template: &MetricTemplate, namespace: &str) -> Result<String, RenderError> {
    let sample = "podinfo".to_string();
    let mut model = Model {
        name: sample.clone(),
        namespace: namespace.to_string(),
        target: sample.clone(),
        service: sample.clone(),
        ingress: sample.clone(),
        route: sample,
        interval: "1m".into(),
        ..Model::default()
    };
    loop {
        match render(&template.spec.query, &model) {
            Err(e) => match missing_variable(&e) {
                Some(var) if !model.variables.contains_key(&var) => {
                    model.variables.insert(var.clone(), var);
                }
                _ => return Err(e),
            },
            ok => return ok,
        }
    }
}

/// The key of `variables.<key>` a render failed on, if that was the error.
fn missing_variable(error: &RenderError) -> Option<String> {
    let RenderError::Exec { message, .. } = error else {
        return None;
    };
    let key = message.strip_prefix("map has no entry for key ")?;
    Some(key.trim_matches('"').to_string())
}

fn duplicates(objects: &[Object], out: &mut Vec<Finding>) {
    let mut first: HashMap<Key<'_>, &Object> = HashMap::new();
    for object in objects.iter().filter(|o| !o.name.is_empty()) {
        let key = (object.kind, object.namespace.as_str(), object.name.as_str());
        match first.get(&key) {
            Some(earlier) => out.push(object.doc.warning(
                "metadata.name",
                format!(
                    "{:?} {}.{} is also defined at {}; applying both keeps only one",
                    object.kind,
                    object.name,
                    object.namespace,
                    earlier.doc.place("metadata.name")
                ),
            )),
            None => {
                first.insert(key, object);
            }
        }
    }
}

/// Flagger warns "Bad things will happen!"; Serin drives the older Canary.
fn shared_targets(objects: &[Object], out: &mut Vec<Finding>) {
    let mut first: HashMap<(&str, &str, &str), &Object> = HashMap::new();
    for object in objects {
        let Some(Resource::Canary(c)) = &object.resource else {
            continue;
        };
        let target = &c.spec.target_ref;
        let key = (
            object.namespace.as_str(),
            target.kind.as_str(),
            target.name.as_str(),
        );
        match first.get(&key) {
            Some(earlier) if earlier.name != object.name => out.push(object.doc.warning(
                "spec.targetRef",
                format!(
                    "canary {}.{} ({}) targets the same {} {}; the operator drives only the older of the two",
                    earlier.name,
                    earlier.namespace,
                    earlier.doc.place("spec.targetRef"),
                    target.kind.as_str(),
                    target.name
                ),
            )),
            Some(_) => {}
            None => {
                first.insert(key, object);
            }
        }
    }
}
