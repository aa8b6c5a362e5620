//! No payment without an order or a refund: voids that cannot run when they
//! are decided are recorded first and finished by the reconciler.

mod common;

use common::{post, serve};
use petstore_example::gateway::Fault;
use petstore_example::{compensation, db, Settings};
use std::time::Duration;

fn order(pet: i64) -> String {
    format!(r#"{{"customer_id":"alice","pet_id":{pet},"payment":{{"amount":10.0}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voids_the_pool_could_not_run_are_finished_once_the_gateway_recovers() {
    let s = serve(Settings::default()).await;
    let gateway = s.app.gateway.clone().unwrap();
    // Each charge answers after 1.5 s; the payment timeout is 0.5 s. Five
    // orders fill the five gateway workers with charges that will capture
    // late, so their voids find no worker.
    gateway.set_fault(Fault::Slow, Duration::from_millis(1500));
    let addr = s.addr;
    let orders: Vec<_> = (1..=5)
        .map(|pet| tokio::spawn(async move { post(addr, "/orders", &order(pet)).await }))
        .collect();
    for o in orders {
        let r = o.await.unwrap();
        assert_eq!(r.status, 504, "{:?}", r.body);
    }
    let store = s.app.store.clone();
    let (pending, _) =
        s.rt.scope(db::compensation_counts(&store.db))
            .await
            .unwrap();
    assert!(pending > 0, "some voids could not run and were recorded");
    gateway.set_fault(Fault::None, Duration::ZERO);

    // The reconciler finishes them; every capture then has its refund.
    let mut settled = false;
    for _ in 0..100 {
        s.rt.scope(compensation::reconcile(&store)).await.unwrap();
        let (pending, _) =
            s.rt.scope(db::compensation_counts(&store.db))
                .await
                .unwrap();
        let stats = gateway.stats();
        if pending == 0 && stats.captured == stats.refunded {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = gateway.stats();
    assert!(settled, "unsettled: {stats:?}");
    let (_, confirmed) =
        s.rt.scope(db::compensation_counts(&store.db))
            .await
            .unwrap();
    assert_eq!(confirmed, 5, "one confirmed void per order");
}
