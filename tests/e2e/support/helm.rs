//! The Helm charts under deploy/helm/ as the tests see them: `helm lint` and
//! `helm template` through the testbed's helm, the rendered YAML stream as
//! JSON values, `kubectl apply` of rendered objects, the chart's CRDs, and a
//! kubeconfig for a ServiceAccount's token (for running the operator with
//! only the chart's RBAC).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{TestEnv, eventually};

pub const SERIN: &str = "serin";
pub const LOADTESTER: &str = "serin-loadtester";

/// `deploy/helm/<chart>`.
pub fn chart_dir(chart: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/helm")
        .join(chart)
}

static SCRATCH: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch directory under target/ for values files and kubeconfigs.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/helm-tests")
        .join(format!(
            "{test}-{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the testbed's helm with `args`.
pub fn helm(env: &TestEnv, args: &[&str]) -> Output {
    env.tool("helm")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the testbed's helm")
}

/// Writes `values` (YAML) to a file in `dir` and returns its path.
fn values_file(dir: &Path, name: &str, values: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, values).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `helm lint --strict` of a chart with `values` (YAML, may be empty);
/// returns helm's output, failing the test when lint fails.
pub fn lint(env: &TestEnv, chart: &str, values: &str) -> String {
    let dir = scratch_dir(&format!("lint-{chart}"));
    let file = values_file(&dir, "values", values);
    let dir_arg = chart_dir(chart);
    let out = helm(
        env,
        &[
            "lint",
            "--strict",
            dir_arg.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let said = text(&out);
    assert!(
        out.status.success(),
        "helm lint --strict {chart} failed:\n{said}\nvalues:\n{values}"
    );
    said
}

/// The outcome of `helm template <release> <chart> -n <namespace> -f values`.
pub fn try_template(
    env: &TestEnv,
    chart: &str,
    release: &str,
    namespace: &str,
    values: &str,
    extra: &[&str],
) -> Result<Vec<Value>, String> {
    let dir = scratch_dir(&format!("template-{chart}-{release}"));
    let file = values_file(&dir, "values", values);
    let chart_arg = chart_dir(chart);
    let mut args = vec![
        "template",
        release,
        chart_arg.to_str().unwrap(),
        "--namespace",
        namespace,
        "-f",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = helm(env, &args);
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(text(&out));
    }
    let stream = String::from_utf8(out.stdout).expect("helm prints UTF-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stream).unwrap_or_else(|e| {
        panic!("helm template printed YAML that does not parse: {e}\n{stream}")
    });
    Ok(docs.into_iter().filter(Value::is_object).collect())
}

/// Like [`try_template`], failing the test when helm fails.
pub fn template(
    env: &TestEnv,
    chart: &str,
    release: &str,
    namespace: &str,
    values: &str,
) -> Vec<Value> {
    try_template(env, chart, release, namespace, values, &[])
        .unwrap_or_else(|e| panic!("helm template {chart} failed:\n{e}\nvalues:\n{values}"))
}

/// `Kind/name` of every object, sorted.
pub fn inventory(objs: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = objs
        .iter()
        .map(|o| format!("{}/{}", str_at(o, "/kind"), str_at(o, "/metadata/name")))
        .collect();
    out.sort();
    out
}

/// The one object of `kind` named `name`.
pub fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind}/{name} in the rendered chart: {:?}",
                inventory(objs)
            )
        })
}

/// Every object of `kind`.
pub fn all_of<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// The string at a JSON pointer, or "".
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The container args of a rendered Deployment, as strings.
pub fn container_args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no args: {deployment}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect()
}

/// `kubectl apply [--dry-run=server] -f -` of `objs` (as a JSON List), in
/// `namespace` for namespaced objects that carry none.
pub fn kubectl_apply(env: &TestEnv, namespace: &str, objs: &[&Value], dry_run: bool) -> String {
    let list = json!({ "apiVersion": "v1", "kind": "List", "items": objs });
    let mut cmd = env.tool("kubectl");
    cmd.args(["apply", "-n", namespace, "-f", "-"]);
    if dry_run {
        cmd.arg("--dry-run=server");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(list.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().expect("kubectl apply");
    let said = text(&out);
    assert!(
        out.status.success(),
        "kubectl apply{} failed:\n{said}\nobjects: {:?}",
        if dry_run { " --dry-run=server" } else { "" },
        objs.iter()
            .map(|o| format!("{}/{}", str_at(o, "/kind"), str_at(o, "/metadata/name")))
            .collect::<Vec<_>>()
    );
    said
}

/// Renders the chart's CRDs (`helm template --include-crds`), server-side
/// applies them with the field manager the other tests use (so the last
/// writer owns every field) and waits until they are Established. Returns
/// their names.
pub async fn install_chart_crds(env: &TestEnv, client: &Client) -> Vec<String> {
    let objs = try_template(env, SERIN, "serin", "default", "", &["--include-crds"])
        .unwrap_or_else(|e| panic!("helm template --include-crds: {e}"));
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for doc in all_of(&objs, "CustomResourceDefinition") {
        let crd: CustomResourceDefinition = serde_json::from_value(doc.clone()).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply("serin-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying the chart's CRD {name}: {e}"));
        names.push(name);
    }
    for name in &names {
        eventually(
            &format!("CRD {name} to be Established"),
            Duration::from_secs(30),
            || async {
                let crd = api.get(name).await.map_err(|e| e.to_string())?;
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                match conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                {
                    true => Ok(()),
                    false => Err(format!("{conditions:?}")),
                }
            },
        )
        .await;
    }
    names
}

/// Asks the API server for a token of ServiceAccount `sa` (TokenRequest,
/// `kubectl create token`) and writes a kubeconfig that uses it, with the
/// admin kubeconfig's server and CA. Returns the kubeconfig's path.
pub fn service_account_kubeconfig(env: &TestEnv, namespace: &str, sa: &str, dir: &Path) -> PathBuf {
    let out = env
        .tool("kubectl")
        .args(["create", "token", sa, "-n", namespace, "--duration=1h"])
        .output()
        .expect("run kubectl create token");
    assert!(
        out.status.success(),
        "kubectl create token {sa} -n {namespace}: {}",
        text(&out)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!token.is_empty(), "an empty token for {sa}");

    let admin = std::fs::read_to_string(&env.kubeconfig).expect("read the admin kubeconfig");
    let admin: Value = serde_saphyr::from_str(&admin).expect("parse the admin kubeconfig");
    let context = admin["current-context"].as_str().expect("current-context");
    let cluster_name = admin["contexts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == context))
        .map(|c| c["context"]["cluster"].clone())
        .expect("the current context");
    let cluster = admin["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == cluster_name))
        .cloned()
        .expect("the current context's cluster");
    let user = format!("system:serviceaccount:{namespace}:{sa}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{ "name": "sa", "context": { "cluster": cluster_name, "user": user, "namespace": namespace } }],
        "current-context": "sa",
    });
    let path = dir.join(format!("{sa}.kubeconfig"));
    // JSON is YAML: kube-rs and kubectl both read it.
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}
