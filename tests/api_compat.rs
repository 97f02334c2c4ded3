//! Compatibility of Serin's API types and CRDs with Flagger's (no cluster).
//!
//! Regenerate deploy/crds/ (and the Helm chart's copies) after changing src/api with:
//! `SERIN_UPDATE_CRDS=1 cargo test --test api_compat`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serin::api::{self, AlertProvider, Canary, MetricTemplate};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/flagger-compat");
const CRD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crds");
/// The Helm chart ships byte copies (tests/e2e/helm.rs checks they match).
const CHART_CRD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/helm/serin/crds");
const CRD_HEADER: &str = "# Generated from src/api by `SERIN_UPDATE_CRDS=1 cargo test --test api_compat`; do not edit.\n";

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {dir}");
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn read_yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// deploy/crds/ is the generated output

fn render_crd(crd: &impl serde::Serialize) -> String {
    format!("{CRD_HEADER}{}", serde_saphyr::to_string(crd).unwrap())
}

#[test]
fn deploy_crds_match_generated_types() {
    let update = std::env::var_os("SERIN_UPDATE_CRDS").is_some();
    let mut stale = Vec::new();
    let crds = api::crds().unwrap();
    for crd in &crds {
        let path = Path::new(CRD_DIR).join(format!("{}.yaml", crd.spec.names.plural));
        let want = render_crd(crd);
        if update {
            for dir in [CRD_DIR, CHART_CRD_DIR] {
                fs::create_dir_all(dir).unwrap();
                let file = Path::new(dir).join(format!("{}.yaml", crd.spec.names.plural));
                fs::write(&file, &want).unwrap();
            }
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("{} differs from the generated CRD", path.display())),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate with: SERIN_UPDATE_CRDS=1 cargo test --test api_compat",
        stale.join("\n")
    );
    // Nothing else may sit in deploy/crds unnoticed.
    let expected: Vec<_> = crds
        .iter()
        .map(|c| format!("{}.yaml", c.spec.names.plural))
        .collect();
    for file in yaml_files(CRD_DIR) {
        assert!(
            expected.contains(&file_name(&file)),
            "{} is not generated",
            file.display()
        );
    }
}

// ---------------------------------------------------------------------------
// Manifests from Flagger's docs parse and re-serialize without loss

/// Every difference between two JSON values, named by JSON path.
fn json_diff(path: &str, want: &Value, have: &Value, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match h.get(k) {
                    Some(hv) => json_diff(&p, wv, hv, out),
                    None => out.push(format!("{p}: lost (was {wv})")),
                }
            }
            for (k, hv) in h {
                if !w.contains_key(k) {
                    out.push(format!("{path}.{k}: added ({hv})"));
                }
            }
        }
        (Value::Array(w), Value::Array(h)) => {
            if w.len() != h.len() {
                out.push(format!("{path}: {} items became {}", w.len(), h.len()));
            }
            for (i, (wv, hv)) in w.iter().zip(h).enumerate() {
                json_diff(&format!("{path}[{i}]"), wv, hv, out);
            }
        }
        // 5 and 5.0 are the same JSON number to the API server.
        (Value::Number(w), Value::Number(h)) if w.as_f64() == h.as_f64() => {}
        (w, h) if w == h => {}
        (w, h) => out.push(format!("{path}: {w} became {h}")),
    }
}

fn round_trip(value: &Value) -> Result<Value, api::ParseError> {
    let kind = value["kind"].as_str().unwrap_or_default();
    Ok(match kind {
        "Canary" => serde_json::to_value(api::from_value::<Canary>(value.clone())?).unwrap(),
        "MetricTemplate" => {
            serde_json::to_value(api::from_value::<MetricTemplate>(value.clone())?).unwrap()
        }
        "AlertProvider" => {
            serde_json::to_value(api::from_value::<AlertProvider>(value.clone())?).unwrap()
        }
        other => panic!("unexpected kind {other:?}"),
    })
}

#[test]
fn flagger_manifests_round_trip_without_loss() {
    let mut problems = Vec::new();
    let mut kinds = BTreeMap::<String, usize>::new();
    for path in yaml_files(&format!("{SHARED}/manifests")) {
        let name = file_name(&path);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# Source:"),
            "{name}: first line should name the source"
        );
        let value = read_yaml(&path);
        assert_eq!(value["apiVersion"], "flagger.app/v1beta1", "{name}");
        *kinds
            .entry(value["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
        match round_trip(&value) {
            Ok(back) => {
                let mut diffs = Vec::new();
                json_diff("", &value, &back, &mut diffs);
                problems.extend(diffs.into_iter().map(|d| format!("{name}: {d}")));
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(kinds.get("Canary").copied().unwrap_or(0) > 0, "{kinds:?}");
    assert!(
        kinds.get("MetricTemplate").copied().unwrap_or(0) > 0,
        "{kinds:?}"
    );
}

#[test]
fn typed_parse_matches_yaml_helper() {
    let path = format!(
        "{SHARED}/manifests/docs-gitbook-tutorials-nginx-progressive-delivery--canary-podinfo-cd8aa0.yaml"
    );
    let canary: Canary = api::from_yaml_str(&fs::read_to_string(path).unwrap()).unwrap();
    let analysis = &canary.spec.analysis;
    assert_eq!(canary.spec.provider, Some(api::canary::Provider::Nginx));
    assert_eq!(analysis.interval(), std::time::Duration::from_secs(10));
    assert_eq!(canary.spec.progress_deadline_seconds(), 60);
    assert_eq!(analysis.max_weight(), 50);
    assert_eq!(analysis.primary_ready_threshold(), 100);
    assert!(canary.status.is_none());
}

// ---------------------------------------------------------------------------
// Serin's CRDs cover Flagger's

#[derive(Default)]
struct SchemaIndex {
    /// JSON path (`.spec.analysis.metrics[].name`, `{}` for map values) to schema node.
    nodes: BTreeMap<String, Value>,
}

impl SchemaIndex {
    fn new(root: &Value) -> Self {
        let mut index = Self::default();
        index.walk(String::new(), root);
        index
    }

    fn walk(&mut self, path: String, node: &Value) {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                self.walk(format!("{path}.{k}"), v);
            }
        }
        if let Some(items) = node.get("items") {
            self.walk(format!("{path}[]"), items);
        }
        if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
            self.walk(format!("{path}{{}}"), extra);
        }
        self.nodes.insert(path, node.clone());
    }
}

fn crd_docs(values: Vec<Value>) -> BTreeMap<String, Value> {
    values
        .into_iter()
        .map(|v| (v["metadata"]["name"].as_str().unwrap().to_string(), v))
        .collect()
}

fn string_set(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Fields Serin's CRD requires although Flagger's does not.
const EXTRA_REQUIRED: &[(&str, &str)] = &[
    // An object the typed client cannot read would break list/watch for
    // every canary; Flagger's controller cannot use a spec-less object either.
    ("", "spec"),
    // Both branches of Flagger's AlertProvider oneOf already require it.
    (".spec", "type"),
    // Flagger puts `required: [backendRef]` on the array, where the API
    // server ignores it; a mirror without a backend is unusable.
    (".spec.service.mirror[]", "backendRef"),
];

/// Problems where `ours` does not accept/reject/print what `theirs` does.
fn compare_crd(name: &str, theirs: &Value, ours: &Value, problems: &mut Vec<String>) {
    let mut check = |what: &str, t: &Value, o: &Value| {
        if t != o {
            problems.push(format!("{name}: {what}: Flagger has {t}, Serin has {o}"));
        }
    };
    check("scope", &theirs["spec"]["scope"], &ours["spec"]["scope"]);
    check("group", &theirs["spec"]["group"], &ours["spec"]["group"]);
    for key in [
        "kind",
        "listKind",
        "plural",
        "singular",
        "categories",
        "shortNames",
    ] {
        check(
            &format!("names.{key}"),
            &theirs["spec"]["names"][key],
            &ours["spec"]["names"][key],
        );
    }
    let (tv, ov) = (&theirs["spec"]["versions"][0], &ours["spec"]["versions"][0]);
    for key in ["name", "served", "storage", "subresources"] {
        check(&format!("versions[0].{key}"), &tv[key], &ov[key]);
    }
    check(
        "metadata.annotations",
        &theirs["metadata"]["annotations"],
        &ours["metadata"]["annotations"],
    );

    // Printer columns: same columns, same order, same priority (0 when absent).
    let columns = |v: &Value| -> Vec<(String, String, String, i64)> {
        v["additionalPrinterColumns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_string(),
                            c["type"].as_str().unwrap_or_default().to_string(),
                            c["jsonPath"].as_str().unwrap_or_default().to_string(),
                            c["priority"].as_i64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (tc, oc) = (columns(tv), columns(ov));
    for col in &tc {
        if !oc.contains(col) {
            problems.push(format!("{name}: printer column {col:?} is missing"));
        }
    }
    if tc != oc {
        problems.push(format!(
            "{name}: printer columns differ: Flagger {tc:?}, Serin {oc:?}"
        ));
    }

    let their_schema = SchemaIndex::new(&tv["schema"]["openAPIV3Schema"]);
    let our_schema = SchemaIndex::new(&ov["schema"]["openAPIV3Schema"]);
    for (path, t) in &their_schema.nodes {
        let at = if path.is_empty() { "(root)" } else { path };
        let Some(o) = our_schema.nodes.get(path) else {
            problems.push(format!("{name}: field {at} is missing"));
            continue;
        };
        let (t_enum, o_enum) = (string_set(t.get("enum")), string_set(o.get("enum")));
        for value in &t_enum {
            if !o_enum.contains(value) {
                problems.push(format!("{name}: {at}: enum value {value} is missing"));
            }
        }
        for value in &o_enum {
            if !t_enum.is_empty() && !t_enum.contains(value) {
                problems.push(format!("{name}: {at}: enum value {value} is not Flagger's"));
            }
        }
        if !o_enum.is_empty() && t_enum.is_empty() {
            // A Rust enum where Flagger has a free string is fine only for
            // fields Flagger itself only ever writes with these values.
            let allowed = [".status.conditions[].type", ".status.conditions[].status"];
            if !allowed.contains(&path.as_str()) {
                problems.push(format!("{name}: {at}: Serin restricts to {o_enum:?}"));
            }
        }
        // `required` on an array node is ignored by the API server.
        if t["type"] != "array" {
            for req in string_set(t.get("required")) {
                if !string_set(o.get("required")).contains(&req) {
                    problems.push(format!("{name}: {at}: {req} should be required"));
                }
            }
        }
        for req in string_set(o.get("required")) {
            let allowed = EXTRA_REQUIRED
                .iter()
                .any(|(p, r)| *p == path.as_str() && format!("{r:?}") == req);
            if !string_set(t.get("required")).contains(&req) && !allowed {
                problems.push(format!("{name}: {at}: Serin also requires {req}"));
            }
        }
        let (tt, ot) = (&t["type"], &o["type"]);
        let compatible = tt == ot || (tt == "number" && ot == "integer") || tt.is_null();
        if !compatible {
            problems.push(format!("{name}: {at}: type {tt} became {ot}"));
        }
        for key in [
            "oneOf",
            "anyOf",
            "pattern",
            "default",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "maxItems",
            "x-kubernetes-int-or-string",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-validations",
        ] {
            let (a, b) = (t.get(key), o.get(key));
            // Schema numbers may be written 1 or 1.0.
            let same = match (a, b) {
                (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
                _ => a == b,
            };
            if !same {
                problems.push(format!(
                    "{name}: {at}: {key}: Flagger has {a:?}, Serin has {b:?}"
                ));
            }
        }
    }
}

#[test]
fn deploy_crds_cover_flagger_crd() {
    let text = fs::read_to_string(format!("{SHARED}/crd.yaml")).unwrap();
    let theirs = crd_docs(serde_saphyr::from_multiple::<Value>(&text).unwrap());
    let ours = crd_docs(yaml_files(CRD_DIR).iter().map(|p| read_yaml(p)).collect());
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "CRD names"
    );
    let mut problems = Vec::new();
    for (name, t) in &theirs {
        compare_crd(name, t, &ours[name], &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The structural-schema rules kube-apiserver enforces on a CRD, as far as
/// they can go wrong in generated output.
#[test]
fn deploy_crds_are_structural() {
    let mut problems = Vec::new();
    for file in yaml_files(CRD_DIR) {
        let crd = read_yaml(&file);
        let name = file_name(&file);
        let index = SchemaIndex::new(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]);
        for (path, node) in &index.nodes {
            let at = if path.is_empty() { "(root)" } else { path };
            let int_or_string = node["x-kubernetes-int-or-string"] == true;
            let free = node["x-kubernetes-preserve-unknown-fields"] == true;
            if node.get("type").is_none() && !int_or_string && !free {
                problems.push(format!("{name}: {at}: no type"));
            }
            if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
                problems.push(format!(
                    "{name}: {at}: both properties and additionalProperties"
                ));
            }
            for key in [
                "$ref",
                "definitions",
                "$defs",
                "const",
                "nullable",
                "uniqueItems",
            ] {
                if node.get(key).is_some() {
                    problems.push(format!("{name}: {at}: {key} is not allowed"));
                }
            }
            for value in node["enum"].as_array().into_iter().flatten() {
                if value.is_null() {
                    problems.push(format!("{name}: {at}: null enum value"));
                }
            }
            // Inside oneOf/anyOf/not only value validations may appear.
            for key in ["oneOf", "anyOf", "allOf"] {
                for branch in node[key].as_array().into_iter().flatten() {
                    for forbidden in [
                        "type",
                        "description",
                        "default",
                        "additionalProperties",
                        "nullable",
                    ] {
                        if branch.get(forbidden).is_some() {
                            problems.push(format!("{name}: {at}: {key} branch sets {forbidden}"));
                        }
                    }
                }
            }
        }
        assert!(
            crd["spec"]["versions"][0]["subresources"]["status"].is_object(),
            "{name}: status subresource"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Fields of `value` that `schema` does not declare, named by JSON path.
fn undeclared(path: &str, value: &Value, schema: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|v| v.is_object());
            for (k, child) in map {
                let p = format!("{path}.{k}");
                match (props.and_then(|ps| ps.get(k)), extra) {
                    (Some(s), _) | (None, Some(s)) => undeclared(&p, child, s, out),
                    // `metadata: {type: object}` is ObjectMeta, checked by the API server.
                    (None, None) if props.is_none() => {}
                    (None, None) => out.push(p),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                undeclared(&format!("{path}[{i}]"), child, &schema["items"], out);
            }
        }
        _ => {}
    }
}

/// Documentation fragments need not be whole objects, but every field they
/// use must exist in Serin's schema.
#[test]
fn fragment_fields_exist_in_deploy_crds() {
    let ours = crd_docs(yaml_files(CRD_DIR).iter().map(|p| read_yaml(p)).collect());
    let by_kind: BTreeMap<String, &Value> = ours
        .values()
        .map(|crd| {
            (
                crd["spec"]["names"]["kind"].as_str().unwrap().to_string(),
                &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            )
        })
        .collect();
    let mut problems = Vec::new();
    for path in yaml_files(&format!("{SHARED}/fragments")) {
        let name = file_name(&path);
        let value = read_yaml(&path);
        let schema = by_kind[value["kind"].as_str().unwrap()];
        let mut unknown = Vec::new();
        undeclared("", &value, schema, &mut unknown);
        problems.extend(
            unknown
                .into_iter()
                .map(|f| format!("{name}: {f} is not in Serin's schema")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// Errors name the offending field

const CANARY: &str = "\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    webhooks:
    - name: load-test
      type: rollout
      url: http://flagger-loadtester.test/
    alerts:
    - name: on-call
      severity: info
      providerRef:
        name: on-call
";

#[test]
fn bad_values_name_the_field_path() {
    let ok: Canary = api::from_yaml_str(CANARY).unwrap();
    assert_eq!(ok.spec.analysis.threshold(), 5);

    let cases = [
        ("interval: 1m", "interval: 5", "spec.analysis.interval"),
        (
            "maxWeight: 50",
            "maxWeight: \"x\"",
            "spec.analysis.maxWeight",
        ),
        ("provider: istio", "provider: foo", "spec.provider"),
        (
            "kind: Deployment",
            "kind: StatefulSet",
            "spec.targetRef.kind",
        ),
        (
            "type: rollout",
            "type: pre-rollouts",
            "spec.analysis.webhooks[0].type",
        ),
        (
            "severity: info",
            "severity: critical",
            "spec.analysis.alerts[0].severity",
        ),
        ("port: 9898", "port: http", "spec.service.port"),
        (
            "  threshold: 5\n",
            "  threshold: [5]\n",
            "spec.analysis.threshold",
        ),
    ];
    for (from, to, path) in cases {
        assert!(CANARY.contains(from), "{from}");
        let yaml = CANARY.replacen(from, to, 1);
        let err = api::from_yaml_str::<Canary>(&yaml).expect_err(to);
        assert_eq!(err.path(), Some(path), "{to}: {err}");
        assert!(err.to_string().contains(path), "{to}: {err}");
    }

    let missing = CANARY.replacen("    name: podinfo\n  service", "  service", 1);
    let err = api::from_yaml_str::<Canary>(&missing).unwrap_err();
    assert_eq!(err.path(), Some("spec.targetRef"), "{err}");
    assert!(err.to_string().contains("name"), "{err}");

    let template = "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: m\nspec:\n  provider:\n    type: mysql\n  query: q\n";
    let err = api::from_yaml_str::<MetricTemplate>(template).unwrap_err();
    assert_eq!(err.path(), Some("spec.provider.type"), "{err}");

    let provider = "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: a\nspec:\n  type: pager\n  address: http://x\n";
    let err = api::from_yaml_str::<AlertProvider>(provider).unwrap_err();
    assert_eq!(err.path(), Some("spec.type"), "{err}");

    let status = format!("{CANARY}status:\n  phase: Exploding\n");
    let err = api::from_yaml_str::<Canary>(&status).unwrap_err();
    assert_eq!(err.path(), Some("status.phase"), "{err}");

    assert!(matches!(
        api::from_yaml_str::<Canary>("spec: [unclosed"),
        Err(api::ParseError::Yaml(_))
    ));
}
