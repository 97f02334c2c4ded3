//! The operator's checks of one MetricTemplate or AlertProvider that need
//! no cluster: what each provider requires, addresses that parse.

use reqwest::{Proxy, Url};

use super::document::Doc;
use super::report::Finding;
use crate::api::{AlertProvider, MetricProviderType, MetricTemplate};
use crate::metrics::template::kind_name;

pub(crate) fn check_template(doc: &Doc, template: &MetricTemplate, out: &mut Vec<Finding>) {
    let provider = &template.spec.provider;
    let kind = kind_name(provider.type_);
    let address = provider.address.as_deref().unwrap_or_default();
    use MetricProviderType as T;
    // What each provider's constructor requires, in Flagger's factory texts.
    // Only Prometheus's is an error, as before; Flagger's own docs leave out
    // the others' addresses and Secrets, which overlays often add later.
    let fails = "every check using this template fails";
    if provider.type_ == T::Prometheus {
        if address.is_empty() || Url::parse(address).is_err() {
            out.push(doc.error(
                "spec.provider.address",
                format!("prometheus address {address} is not a valid URL"),
            ));
        }
    } else if !address.is_empty() && Url::parse(address).is_err() {
        out.push(doc.warning(
            "spec.provider.address",
            format!("{kind} address {address} is not a valid URL: {fails}"),
        ));
    } else if address.is_empty() {
        let missing = match provider.type_ {
            T::Graphite | T::Influxdb => format!("{kind} address  is not a valid URL"),
            T::Dynatrace | T::Splunk => format!("{kind} endpoint is not set"),
            _ => String::new(),
        };
        if !missing.is_empty() {
            out.push(doc.warning("spec.provider.address", format!("{missing}: {fails}")));
        }
    }
    if provider.type_ == T::Cloudwatch && provider.region.as_deref().unwrap_or_default().is_empty()
    {
        out.push(doc.warning(
            "spec.provider.region",
            format!("region not specified: {fails}"),
        ));
    }
    let keys = match provider.type_ {
        T::Datadog => "datadog_api_key and datadog_application_key",
        T::Newrelic => "newrelic_account_id and newrelic_query_key",
        T::Dynatrace => "dynatrace_token",
        T::Splunk => "sf_token_key",
        _ => "",
    };
    if !keys.is_empty() && provider.secret_ref.is_none() {
        out.push(doc.warning(
            "spec.provider.secretRef",
            format!("{kind} reads {keys} from a Secret: without a secretRef {fails}"),
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
