//! Serin's own CRDs (deploy/crds/, generated from the Rust types) are accepted
//! by a real kube-apiserver (a server-side dry run: applying them is left to
//! the tests that run the operator).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

#[tokio::test]
async fn serin_crds_pass_a_server_side_dry_run() {
    let env = TestEnv::from_env();
    let api: Api<CustomResourceDefinition> = Api::all(env.client().await);
    let params = PatchParams::apply("serin-tests").force().dry_run();
    let crds = serin::api::crds().unwrap();
    assert_eq!(crds.len(), 3);
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap();
        let accepted = api
            .patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("the API server refused CRD {name}: {e}"));
        assert_eq!(accepted.spec.names.kind, crd.spec.names.kind);
    }
}
