//! The slow-hash pool (issue 12): a fixed number of threads and a bounded queue, so a
//! flood of password or secret checks is refused at once (503 at the endpoints) instead
//! of piling up threads and memory. Its own test binary: the pool is process-wide.
#![cfg(feature = "provider")]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tower_oauth_toolkit::hashers::{
    hash_secret, in_hash_pool, verify_secret, SecretHasher, HASH_QUEUE_PER_CPU,
};

/// A gate the pool's jobs wait at until it opens.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_refuses_at_once_and_recovers() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let capacity = cpus + cpus * HASH_QUEUE_PER_CPU;
    let gate = Gate::default();
    // Fill every thread and every queue slot with a job that waits at the gate.
    let mut waiting = Vec::new();
    for _ in 0..capacity {
        let g = gate.clone();
        waiting.push(tokio::spawn(in_hash_pool(move || {
            g.wait();
            1u32
        })));
        // Let the threads take their jobs off the queue in order.
        tokio::task::yield_now().await;
    }
    // Give the threads a moment to pick up their jobs, then probe: something beyond
    // the capacity is refused without waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A few of the jobs above may have been refused while the threads were starting,
    // leaving as many free slots: a probe that gets in waits behind the gate, so each
    // probe is only looked at after 50 ms, and the first ones may fill the slots.
    let mut refused = 0;
    let mut queued = Vec::new();
    for _ in 0..cpus + 4 {
        let probe = tokio::spawn(in_hash_pool(|| 2u32));
        tokio::time::sleep(Duration::from_millis(50)).await;
        if probe.is_finished() {
            match probe.await {
                Ok(Err(_busy)) => refused += 1,
                other => panic!("a probe ran before the gate opened: {other:?}"),
            }
        } else {
            queued.push(probe);
        }
    }
    assert!(
        refused >= 4,
        "a full pool must refuse at once: {refused} refused"
    );
    gate.open();
    let mut done = 0;
    for w in waiting {
        if let Ok(Ok(1)) = w.await {
            done += 1;
        }
    }
    assert!(
        done >= capacity - cpus,
        "queued work ran: {done} of {capacity}"
    );
    for q in queued {
        assert_eq!(q.await.unwrap().ok(), Some(2), "an accepted probe ran");
    }
    // Recovered: a real verification goes through again.
    let stored = hash_secret("s3cret", SecretHasher::Argon2).unwrap();
    let s = stored.clone();
    assert_eq!(
        in_hash_pool(move || verify_secret("s3cret", &s)).await.ok(),
        Some(true)
    );
    assert_eq!(
        in_hash_pool(move || verify_secret("wrong", &stored))
            .await
            .ok(),
        Some(false)
    );
}
