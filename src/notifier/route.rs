//! Which `analysis.alerts` receive an alert, and where each one points.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serin_actors::events::Severity;
use serin_actors::model::spec::AlertRef;

use super::error::NotifyError;
use super::target::{Endpoint, Target};
use crate::k8s::{Caches, cache};

/// Flagger's `alert()` filter: an `info` alert takes everything, `warn` takes
/// warnings and errors, `error` errors only; an empty or unknown severity
/// takes nothing (Flagger's quirk, although its docs say `info`).
pub fn admits(alert_severity: &str, event: Severity) -> bool {
    match alert_severity {
        "info" => true,
        "warn" => matches!(event, Severity::Warn | Severity::Error),
        "error" => event == Severity::Error,
        _ => false,
    }
}

/// `providerRef.namespace`, defaulting to the Canary's namespace.
pub fn provider_namespace<'a>(alert: &'a AlertRef, canary_namespace: &'a str) -> &'a str {
    alert
        .provider_namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or(canary_namespace)
}

/// The target of one alert; `Ok(None)` when the provider has no address.
pub async fn resolve(
    caches: &Caches,
    client: &kube::Client,
    alert: &AlertRef,
    namespace: &str,
) -> Result<Option<Target>, NotifyError> {
    let name = alert.provider_name.as_str();
    let provider = cache::get(&caches.alert_providers, namespace, name).ok_or_else(|| {
        NotifyError::ProviderNotFound {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        }
    })?;
    let spec = &provider.spec;
    let mut endpoint = Endpoint {
        url: spec.address.clone().unwrap_or_default(),
        token: String::new(),
        proxy: spec.proxy.clone().unwrap_or_default(),
        username: spec.username().to_owned(),
        channel: spec.channel().to_owned(),
    };
    if let Some(secret_ref) = &spec.secret_ref {
        let (address, token) = read_secret(client, namespace, name, &secret_ref.name).await?;
        endpoint.url = address;
        endpoint.token = token.unwrap_or_default();
    }
    Target::build(spec.type_, endpoint).map_err(|err| NotifyError::Provider {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        source: Box::new(err),
    })
}

/// `address` (required) and `token` of the provider's Secret. The watch
/// cache strips Secret data, so this is a GET.
async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    provider: &str,
    secret: &str,
) -> Result<(String, Option<String>), NotifyError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(secret)
        .await
        .map_err(|err| NotifyError::Secret {
            name: provider.to_owned(),
            namespace: namespace.to_owned(),
            reason: err.to_string(),
        })?;
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
    };
    let address = text("address").ok_or_else(|| NotifyError::SecretWithoutAddress {
        name: provider.to_owned(),
        namespace: namespace.to_owned(),
    })?;
    Ok((address, text("token")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_filter_is_flaggers() {
        use Severity::*;
        let table = [
            ("info", [true, true, true]),
            ("warn", [false, true, true]),
            ("error", [false, false, true]),
            ("", [false, false, false]),
            ("critical", [false, false, false]),
        ];
        for (alert, expected) in table {
            let got = [Info, Warn, Error].map(|event| admits(alert, event));
            assert_eq!(got, expected, "alert severity {alert:?}");
        }
    }

    #[test]
    fn provider_namespace_defaults_to_the_canarys() {
        let mut alert = AlertRef::default();
        assert_eq!(provider_namespace(&alert, "apps"), "apps");
        alert.provider_namespace = Some(String::new());
        assert_eq!(provider_namespace(&alert, "apps"), "apps");
        alert.provider_namespace = Some("flagger".into());
        assert_eq!(provider_namespace(&alert, "apps"), "flagger");
    }
}
