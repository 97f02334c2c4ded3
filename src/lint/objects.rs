//! The operator's checks of one MetricTemplate or AlertProvider that need
//! no cluster: a provider Serin can query, addresses that parse.

use reqwest::{Proxy, Url};

use super::document::Doc;
use super::report::Finding;
use crate::api::{AlertProvider, MetricProviderType, MetricTemplate};
use crate::metrics::template::kind_name;

pub(crate) fn check_template(doc: &Doc, template: &MetricTemplate, out: &mut Vec<Finding>) {
    let provider = &template.spec.provider;
    if provider.type_ != MetricProviderType::Prometheus {
        // Flagger queries these; Serin's operator fails the checks that use them.
        out.push(doc.warning(
            "spec.provider.type",
            format!(
                "provider {} is not supported by Serin yet (only prometheus); checks using this template fail",
                kind_name(provider.type_)
            ),
        ));
        return;
    }
    // What `metrics::prometheus::Prometheus::new` requires.
    let address = provider.address.as_deref().unwrap_or_default();
    if address.is_empty() || Url::parse(address).is_err() {
        out.push(doc.error(
            "spec.provider.address",
            format!("prometheus address {address} is not a valid URL"),
        ));
    }
}

pub(crate) fn check_provider(doc: &Doc, provider: &AlertProvider, out: &mut Vec<Finding>) {
    let spec = &provider.spec;
    // With a secretRef the address comes from the Secret, read in the cluster.
    if let Some(address) = spec.address.as_deref().filter(|a| !a.is_empty())
        && Url::parse(address).is_err()
    {
        out.push(doc.error("spec.address", format!("invalid hook URL {address}")));
    }
    if let Some(proxy) = spec.proxy.as_deref().filter(|p| !p.is_empty())
        && let Err(e) = Proxy::all(proxy)
    {
        out.push(doc.error(
            "spec.proxy",
            format!("unable to parse proxy URL '{proxy}', error: {e}"),
        ));
    }
}
