use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, ConfigMapProjection, ConfigMapVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, ProjectedVolumeSource, SecretEnvSource, SecretKeySelector,
    SecretVolumeSource, Volume, VolumeProjection,
};

use super::*;

fn cm(pairs: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn secret(kind: Option<&str>, pairs: &[(&str, &str)]) -> Secret {
    Secret {
        type_: kind.map(str::to_string),
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

// Expected values: `printf '%s' '<Go JSON>' | sha256sum | cut -c1-16`.
#[test]
fn configmap_checksum_matches_flaggers_algorithm() {
    // Go: {"a":"\u003cx\u003e","b":"2"} (sorted keys, HTML-safe escapes).
    assert_eq!(
        configmap_checksum(&cm(&[("b", "2"), ("a", "<x>")])),
        "4cb153f08237554e"
    );
    // Go: {"k":"line\nnext \"q\" \\ \u0026"}
    assert_eq!(
        configmap_checksum(&cm(&[("k", "line\nnext \"q\" \\ &")])),
        "bcde78da5b945696"
    );
    // A ConfigMap without data marshals as null.
    assert_eq!(
        configmap_checksum(&ConfigMap::default()),
        "74234e98afe7498f"
    );
}

#[test]
fn secret_checksum_base64_encodes_values() {
    // Go: {"user":"YWRtaW4="}
    let s = secret(Some("Opaque"), &[("user", "admin")]);
    assert_eq!(secret_checksum(&s).as_deref(), Some("661a3486650fe1b6"));
    let tls = secret(Some("kubernetes.io/tls"), &[("user", "admin")]);
    assert_eq!(secret_checksum(&tls).as_deref(), Some("661a3486650fe1b6"));
    let untyped = secret(None, &[("user", "admin")]);
    assert_eq!(
        secret_checksum(&untyped).as_deref(),
        Some("661a3486650fe1b6")
    );
    let registry = secret(Some("kubernetes.io/dockerconfigjson"), &[("x", "y")]);
    assert_eq!(secret_checksum(&registry), None);
}

#[test]
fn base64_pads_like_go() {
    assert_eq!(base64(b"admin"), "YWRtaW4=");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
    assert_eq!(base64(b""), "");
}

#[test]
fn go_json_string_escapes() {
    assert_eq!(
        go_json_string("a\u{1}\u{8}\u{c}\u{2028}"),
        "\"a\\u0001\\b\\f\\u2028\""
    );
}

#[test]
fn cached_checksums_prefer_the_stored_entry() {
    let stored = cm(&[(CHECKSUM_KEY, "abc")]);
    assert_eq!(cached_configmap_checksum(&stored), "abc");
    let full = cm(&[("b", "2"), ("a", "<x>")]);
    assert_eq!(cached_configmap_checksum(&full), "4cb153f08237554e");
    let s = secret(Some("Opaque"), &[(CHECKSUM_KEY, "def")]);
    assert_eq!(cached_secret_checksum(&s).as_deref(), Some("def"));
}

#[test]
fn tracking_can_be_disabled_by_annotation() {
    let mut meta = ObjectMeta::default();
    assert!(!tracking_disabled(&meta));
    meta.annotations = Some(BTreeMap::from([(
        TRACKING_ANNOTATION.to_string(),
        "disabled".to_string(),
    )]));
    assert!(tracking_disabled(&meta));
    let mut c = cm(&[("a", "b")]);
    c.metadata = meta;
    assert_eq!(lookup_configmap(Some(&c)), Lookup::Untracked);
}

fn pod() -> PodSpec {
    PodSpec {
        volumes: Some(vec![
            Volume {
                name: "cfg".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "app-config".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "tls".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some("app-tls".into()),
                    optional: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "proj".into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![
                        VolumeProjection {
                            config_map: Some(ConfigMapProjection {
                                name: "proj-config".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        VolumeProjection {
                            secret: Some(k8s_openapi::api::core::v1::SecretProjection {
                                name: "proj-secret".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        containers: vec![Container {
            name: "app".into(),
            env: Some(vec![
                EnvVar {
                    name: "A".into(),
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "env-config".into(),
                            key: "a".into(),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "B".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "app-tls".into(),
                            key: "b".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "env-secret".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }],
        init_containers: Some(vec![Container {
            name: "init".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "init-config".into(),
                    optional: Some(true),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

#[test]
fn referenced_configs_cover_volumes_env_and_init_containers() {
    let refs = referenced_configs(&pod());
    let keys: Vec<(String, bool)> = refs.iter().map(|r| (r.key(), r.optional)).collect();
    assert_eq!(
        keys,
        vec![
            ("configmap/app-config".to_string(), false),
            // Optional in the volume, mandatory in env: mandatory.
            ("secret/app-tls".to_string(), false),
            ("configmap/proj-config".to_string(), false),
            ("secret/proj-secret".to_string(), false),
            ("configmap/env-config".to_string(), true),
            ("secret/env-secret".to_string(), false),
            ("configmap/init-config".to_string(), true),
        ]
    );
}

#[test]
fn rename_points_only_tracked_refs_at_primary_copies() {
    let mut spec = pod();
    let tracked: BTreeSet<(ConfigKind, String)> = [
        (ConfigKind::ConfigMap, "app-config".to_string()),
        (ConfigKind::Secret, "app-tls".to_string()),
        (ConfigKind::Secret, "proj-secret".to_string()),
        (ConfigKind::ConfigMap, "init-config".to_string()),
    ]
    .into_iter()
    .collect();
    rename_tracked(&mut spec, &tracked);
    let names: Vec<String> = referenced_configs(&spec)
        .iter()
        .map(ConfigRef::key)
        .collect();
    assert_eq!(
        names,
        vec![
            "configmap/app-config-primary",
            "secret/app-tls-primary",
            "configmap/proj-config",
            "secret/proj-secret-primary",
            "configmap/env-config",
            "secret/env-secret",
            "configmap/init-config-primary",
        ]
    );
}

#[test]
fn tracked_configs_skip_untracked_and_optional_missing() {
    let refs = referenced_configs(&pod());
    let result = tracked_configs(&refs, "test", |r| match r.name.as_str() {
        "app-config" => Lookup::Tracked {
            checksum: "c1".into(),
        },
        "app-tls" | "proj-config" | "proj-secret" | "env-secret" => Lookup::Untracked,
        _ => Lookup::Missing,
    });
    assert_eq!(
        result,
        Ok(BTreeMap::from([(
            "configmap/app-config".to_string(),
            "c1".to_string()
        )]))
    );
    let missing = tracked_configs(&refs, "test", |_| Lookup::Missing);
    assert_eq!(
        missing.map_err(|e| e.to_string()),
        Err(
            "configmap app-config.test get query error: configmaps \"app-config\" not found".into()
        )
    );
    assert_eq!(
        tracked_set(&BTreeMap::from([("secret/a".to_string(), "x".to_string())])),
        BTreeSet::from([(ConfigKind::Secret, "a".to_string())])
    );
}

#[test]
fn primary_copies_keep_type_and_foreign_owners() {
    let mut source = secret(Some("kubernetes.io/tls"), &[("tls.crt", "x")]);
    source.metadata = ObjectMeta {
        name: Some("app-tls".into()),
        namespace: Some("test".into()),
        labels: Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())])),
        owner_references: Some(vec![OwnerReference {
            api_version: "cert-manager.io/v1".into(),
            kind: "Certificate".into(),
            name: "app".into(),
            uid: "u2".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let owner = super::super::metadata::controller_ref("podinfo", "u1");
    let copy = primary_secret(&source, owner.clone(), &["*".to_string()]);
    assert_eq!(copy.metadata.name.as_deref(), Some("app-tls-primary"));
    assert_eq!(copy.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(copy.data, source.data);
    assert_eq!(copy.metadata.labels, source.metadata.labels);
    let owners = copy.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 2);
    assert_eq!(owners[0], owner);
    let cm_copy = primary_configmap(&cm(&[("a", "b")]), owner, &[]);
    assert_eq!(cm_copy.metadata.labels, None);
    assert!(copy_is_current(
        "x",
        Some(&Lookup::Tracked {
            checksum: "x".into()
        })
    ));
    assert!(!copy_is_current("x", Some(&Lookup::Missing)));
}
