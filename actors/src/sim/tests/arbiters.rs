//! Canary actors on real arbiter threads (real time, no pause).

use std::time::Duration;

use actix::Arbiter;

use super::*;
use crate::model::status::Phase;
use crate::registry::Upsert;

fn assert_send<T: Send>(_: &T) {}

#[actix::test]
async fn canaries_spread_over_arbiters_initialise_and_stop() {
    let sim = SimCluster::new(SimConfig::default());
    let services = Services::start(
        sim.ports(),
        RuntimeConfig::default(),
        Clock::system(),
        &Arbiter::current(),
    );
    let registry = Registry::new(services, ArbiterPool::spawn(2));
    let keys: Vec<CanaryKey> = (0..20)
        .map(|i| CanaryKey::new("prod", format!("svc-{i}")))
        .collect();
    for k in &keys {
        sim.deploy(k, "v1");
        let upsert = registry.upsert(spec(&k.namespace, &k.name, analysis(10, 50, 2)));
        // Reconcile futures run on tokio's multi-thread workers: must be Send.
        assert_send(&upsert);
        assert_eq!(upsert.await, Ok(Upsert::Started));
    }
    for k in &keys {
        let mut phase = Phase::Initializing;
        for _ in 0..200 {
            let addr = registry.addr(k).unwrap();
            phase = addr.send(GetState).await.unwrap().status.phase;
            if phase == Phase::Initialized {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(phase, Phase::Initialized, "{k}");
    }
    assert!(registry.delete(&keys[0]));
    registry.shutdown();
    assert!(registry.is_empty());
}
