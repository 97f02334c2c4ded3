use std::collections::BTreeMap;

use super::*;

fn model() -> Model {
    Model {
        name: "podinfo".into(),
        namespace: "test".into(),
        target: "podinfo".into(),
        service: "podinfo-svc".into(),
        ingress: "podinfo-ing".into(),
        route: "podinfo-route".into(),
        interval: "1m".into(),
        variables: BTreeMap::from([("direction".to_owned(), "inbound".to_owned())]),
    }
}

fn ok(t: &str) -> String {
    render(t, &model()).unwrap()
}

fn err(t: &str) -> String {
    render(t, &model()).unwrap_err().to_string()
}

#[test]
fn model_functions() {
    assert_eq!(
        ok(
            "{{ name }} {{namespace}} {{ target }} {{ service }} {{ ingress }} {{ route }} [{{ interval }}]"
        ),
        "podinfo test podinfo podinfo-svc podinfo-ing podinfo-route [1m]"
    );
    assert_eq!(ok("no actions {here}"), "no actions {here}");
}

#[test]
fn variables_and_missing_keys() {
    assert_eq!(
        ok(r#"direction="{{ variables.direction }}""#),
        r#"direction="inbound""#
    );
    assert_eq!(
        err("a\n  {{ variables.missing }}"),
        "template excution failed: template: tmpl:2:5: executing \"tmpl\" at <variables.missing>: map has no entry for key \"missing\""
    );
    assert_eq!(ok("{{ variables }}"), "map[direction:inbound]");
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(ok("a  \n {{- name -}} \n b"), "apodinfob");
    assert_eq!(ok("a {{/* why */}} b"), "a  b");
    assert_eq!(ok("a {{- /* why */ -}} b"), "ab");
}

#[test]
fn printf_and_variables() {
    assert_eq!(
        ok(
            r#"{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}x{{ $route }}"#
        ),
        "xkube(ew)?_test__podinfo-ing_canary__.*__podinfo-svc_canary(_[0-9]+)?"
    );
    assert_eq!(
        ok(r#"{{ printf "%d-%v-%s" 3 name 4 }}"#),
        "3-podinfo-%!s(int=4)"
    );
    assert_eq!(ok(r#"{{ printf "%s %s" name }}"#), "podinfo %!s(MISSING)");
    assert_eq!(ok(r#"{{ printf "%s" name 1 }}"#), "podinfo%!(EXTRA int=1)");
    assert_eq!(ok(r#"{{ printf "%d%%" 5 }}"#), "5%");
    assert_eq!(ok(r#"{{ name | printf "%s-canary" }}"#), "podinfo-canary");
    assert_eq!(ok(r#"{{ (printf "%s" target) }}"#), "podinfo");
    assert_eq!(ok(r#"{{ $x := "a" }}{{ $x = "b" }}{{ $x }}"#), "b");
    assert_eq!(ok(r#"{{ print "a" 1 2 "b" }}"#), "a1 2b");
    assert_eq!(ok("{{ `raw \\n` }}"), "raw \\n");
}

/// Every MetricTemplate in Flagger's docs renders, whatever its provider.
#[test]
fn flagger_doc_templates_render() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/flagger-compat/manifests"
    );
    let mut rendered = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.contains("metrictemplate") {
            continue;
        }
        let yaml = std::fs::read_to_string(&path).unwrap();
        let template: crate::api::MetricTemplate = crate::api::from_yaml_str(&yaml).unwrap();
        let out = render(&template.spec.query, &model()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!out.contains("{{"), "{file}: {out}");
        rendered.insert(file, out);
    }
    assert!(rendered.len() >= 20, "{}", rendered.len());
    let skipper = rendered
        .iter()
        .find(|(f, _)| f.contains("skipper"))
        .map(|(_, q)| q.clone())
        .unwrap();
    assert!(skipper.contains(
        r#"route=~"kube(ew)?_test__podinfo-ing_canary__.*__podinfo-svc_canary(_[0-9]+)?","#
    ));
    let linkerd = rendered
        .iter()
        .find(|(f, _)| f.contains("linkerd-progressive-delivery--metrictemplate-latency"))
        .map(|(_, q)| q.clone())
        .unwrap();
    assert!(linkerd.contains(r#"direction="inbound""#));
    let graphite = rendered
        .iter()
        .find(|(f, _)| f.contains("graphite"))
        .map(|(_, q)| q.clone())
        .unwrap();
    assert!(graphite.contains("app.podinfo.exception.*.method.*.outcome.{CLIENT_ERROR,"));
    assert!(graphite.contains("\n  1m,\n"));
}

#[test]
fn unsupported_constructs_are_errors() {
    assert_eq!(
        err("{{ if name }}x{{ end }}"),
        "template parsing failed: template: tmpl:1: {{if}} actions are not supported by Serin's template renderer"
    );
    assert_eq!(
        err("\n{{ foo }}"),
        "template parsing failed: template: tmpl:2: function \"foo\" not defined"
    );
    assert!(err(r#"{{ eq name "x" }}"#).contains("function \"eq\" is not supported"));
    assert!(err("{{ $y }}").contains("undefined variable \"$y\""));
    assert!(err("{{ name ").contains("unclosed action"));
    assert!(err(r#"{{ printf "%x" 1 }}"#).contains("printf verb %x is not supported"));
    assert!(err("{{ name 1 }}").contains("wrong number of args for name: want 0 got 1"));
    assert!(err("{{ name.x }}").contains("can't evaluate field x in type string"));
    assert!(err("{{ }}").contains("missing value for command"));
    assert!(err("{{ 'c' }}").contains("unexpected"));
}
