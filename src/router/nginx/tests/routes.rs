//! Route annotations: weights, A/B header and cookie rules, reading back.

use serde_json::json;
use serin_actors::model::observe::Routes;

use super::*;

#[test]
fn a_custom_annotation_prefix_names_every_key() {
    let keys = Keys::new("custom.ingress.kubernetes.io");
    let wanted = route_annotations(&keys, None, 20);
    assert_eq!(
        wanted,
        map(&[
            ("custom.ingress.kubernetes.io/canary", "true"),
            ("custom.ingress.kubernetes.io/canary-weight", "20"),
        ])
    );
}

#[test]
fn weights_become_canary_weight_annotations() {
    let clone = created(&caches(canary(json!({})), vec![user_ingress()]));
    let c = caches(canary(json!({})), vec![user_ingress(), clone.clone()]);
    let routes = Routes {
        primary: 90,
        canary: 10,
        mirrored: false,
    };
    let Some(Write::Patch { name, patch }) =
        plan_routes(&c, &keys(), &source(&c), routes).expect("plan")
    else {
        panic!("expected a patch");
    };
    assert_eq!(name, "podinfo-canary");
    assert_eq!(
        patch,
        json!({"metadata": {"annotations": {
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "10",
            "nginx.ingress.kubernetes.io/canary-by-header": null,
            "nginx.ingress.kubernetes.io/canary-by-header-value": null,
            "nginx.ingress.kubernetes.io/canary-by-header-pattern": null,
            "nginx.ingress.kubernetes.io/canary-by-cookie": null,
        }}})
    );
    // Already at 0: nothing to write.
    assert_eq!(
        plan_routes(&c, &keys(), &source(&c), Routes::default()).expect("plan"),
        None
    );
}

#[test]
fn ab_testing_sets_header_and_cookie_rules_with_weight_zero() {
    let rule = ab_rule(
        ab_canary()
            .spec
            .analysis
            .r#match
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(
        route_annotations(&keys(), Some(&rule), 100),
        map(&[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-by-cookie", "canary"),
            ("nginx.ingress.kubernetes.io/canary-by-header", "x-canary"),
            (
                "nginx.ingress.kubernetes.io/canary-by-header-value",
                "insider"
            ),
            ("nginx.ingress.kubernetes.io/canary-weight", "0"),
        ])
    );
    let regex = canary(json!({"iterations": 5, "match": [
        {"headers": {"user-agent": {"regex": ".*Firefox.*"}}},
        {"headers": {"x-other": {"exact": "ignored"}}},
    ]}));
    let rule = ab_rule(regex.spec.analysis.r#match.as_deref().unwrap_or_default());
    assert_eq!(
        route_annotations(&keys(), Some(&rule), 100),
        map(&[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-by-header", "user-agent"),
            (
                "nginx.ingress.kubernetes.io/canary-by-header-pattern",
                ".*Firefox.*"
            ),
            ("nginx.ingress.kubernetes.io/canary-weight", "0"),
        ])
    );
}

#[test]
fn an_ab_run_at_rest_drops_its_rules_and_shows_weight_zero() {
    let clone = created(&caches(ab_canary(), vec![user_ingress()]));
    let live = with_annotations(
        clone,
        &[
            ("nginx.ingress.kubernetes.io/canary-by-header", "x-canary"),
            (
                "nginx.ingress.kubernetes.io/canary-by-header-value",
                "insider",
            ),
            ("nginx.ingress.kubernetes.io/canary-by-cookie", "canary"),
        ],
    );
    let c = caches(ab_canary(), vec![user_ingress(), live]);
    assert_eq!(
        current_routes(&c, &keys(), &source(&c)).expect("routes"),
        Routes {
            primary: 0,
            canary: 100,
            mirrored: false
        }
    );
    let Some(Write::Patch { patch, .. }) =
        plan_routes(&c, &keys(), &source(&c), Routes::default()).expect("plan")
    else {
        panic!("expected a patch");
    };
    let annotations = &patch["metadata"]["annotations"];
    assert_eq!(annotations["nginx.ingress.kubernetes.io/canary"], "true");
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/canary-weight"],
        "0"
    );
    for gone in [
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-cookie",
    ] {
        assert_eq!(
            annotations[format!("{PREFIX}/{gone}")],
            json!(null),
            "{gone}"
        );
    }
}

#[test]
fn routes_read_back_from_the_annotations() {
    let read = |pairs: &[(&str, &str)], ab: bool| read_routes(Some(&map(pairs)), &keys(), ab);
    let weight = |w: i32| Routes {
        primary: 100 - w,
        canary: w,
        mirrored: false,
    };
    let w30 = [("nginx.ingress.kubernetes.io/canary-weight", "30")];
    assert_eq!(read(&w30, false).expect("30"), weight(30));
    assert_eq!(read(&[], false).expect("none"), weight(0));
    assert_eq!(read_routes(None, &keys(), false).expect("none"), weight(0));
    // A header rule only counts for an A/B run.
    let header = [
        ("nginx.ingress.kubernetes.io/canary-by-header", "x-canary"),
        ("nginx.ingress.kubernetes.io/canary-weight", "0"),
    ];
    assert_eq!(read(&header, true).expect("ab"), weight(100));
    assert_eq!(read(&header, false).expect("canary"), weight(0));
    let cookie = [("nginx.ingress.kubernetes.io/canary-by-cookie", "canary")];
    assert_eq!(read(&cookie, true).expect("cookie"), weight(100));
    let bad = [("nginx.ingress.kubernetes.io/canary-weight", "ten")];
    let err = read(&bad, false).expect_err("bad");
    assert!(
        err.to_string()
            .starts_with("failed to convert ten to int: "),
        "{err}"
    );
}
