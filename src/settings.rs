//! Operator-wide settings derived from the command line, in the shape the
//! adapters need them.

use crate::cli::OperatorFlags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `-selector-labels`: the first one present in the target's selector wins.
    pub selector_labels: Vec<String>,
    /// `-include-label-prefix`: prefixes of labels/annotations copied to
    /// generated objects; `*` means all.
    pub include_label_prefixes: Vec<String>,
    /// `-enable-config-tracking`.
    pub config_tracking: bool,
    /// `-mesh-provider`, used when a Canary sets no `spec.provider`.
    pub mesh_provider: String,
    /// `-namespace`; `None` watches every namespace.
    pub namespace: Option<String>,
    pub no_cross_namespace_refs: bool,
    pub cluster_name: String,
    pub ingress_annotations_prefix: String,
    pub ingress_class: String,
    pub metrics_server: String,
    /// The Canary CRD in the cluster keeps `status.lastRequest`, so the
    /// command line's requests can be answered once each (false under
    /// Flagger's own CRD, which prunes the field).
    pub requests: bool,
}

impl Settings {
    pub fn from_flags(flags: &OperatorFlags) -> Settings {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect()
        };
        Settings {
            selector_labels: list(&flags.selector_labels),
            include_label_prefixes: list(&flags.include_label_prefix),
            config_tracking: flags.enable_config_tracking,
            mesh_provider: flags.mesh_provider.clone(),
            namespace: (!flags.namespace.is_empty()).then(|| flags.namespace.clone()),
            no_cross_namespace_refs: flags.no_cross_namespace_refs,
            cluster_name: flags.cluster_name.clone(),
            ingress_annotations_prefix: flags.ingress_annotations_prefix.clone(),
            ingress_class: flags.ingress_class.clone(),
            metrics_server: flags.metrics_server.clone(),
            requests: true,
        }
    }
}
