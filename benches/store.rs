//! Storage micro-benchmarks on a SQLite file: inserting an access token and looking one up
//! by checksum (hit and miss), the two queries on every token request and every
//! protected-API request that misses the cache.
//!
//! Two views: one client at a time (criterion's default: latency, including the hand-off
//! to the engine's writer or reader thread and back), and 8 or 32 clients at once
//! (`*_x8`, `*_x32`: time per operation under load, which is what a server sees; the
//! writer commits what queued meanwhile in one transaction).
//!
//! `cargo bench --bench store`

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::{
    ClientType, GrantType, NewAccessToken, NewApplication, Timestamp,
};
use tower_oauth_toolkit::store::sql::SqlStore;
use tower_oauth_toolkit::store::{IssueTokens, Store};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (store, app_id) = rt.block_on(async {
        let store = SqlStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let app = store
            .create_application(NewApplication::new(
                "bench",
                ClientType::Confidential,
                GrantType::ClientCredentials,
            ))
            .await
            .unwrap();
        // A table of realistic size for the lookups.
        for i in 0..100_000u64 {
            store
                .issue_tokens(tokens(app.id, &format!("seed-{i}")))
                .await
                .unwrap();
        }
        (store, app.id)
    });

    let mut g = c.benchmark_group("sqlite_store");
    g.throughput(Throughput::Elements(1));
    let n = AtomicU64::new(0);
    g.bench_function("insert_access_token", |b| {
        b.to_async(&rt).iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let store = &store;
            async move {
                store
                    .issue_tokens(tokens(app_id, &format!("bench-{i}")))
                    .await
                    .unwrap();
            }
        })
    });
    let m = AtomicU64::new(0);
    let checksums: Vec<String> = (0..100_000u64)
        .map(|i| token_checksum(&format!("seed-{i}")))
        .collect();
    g.bench_function("find_access_token_hit", |b| {
        b.to_async(&rt).iter(|| {
            let i = m.fetch_add(7919, Ordering::Relaxed) as usize % checksums.len();
            let (store, sum) = (&store, &checksums[i]);
            async move {
                assert!(store.find_access_token(sum).await.unwrap().is_some());
            }
        })
    });
    let miss = token_checksum("not-there");
    g.bench_function("find_access_token_miss", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(store.find_access_token(&miss).await.unwrap().is_none());
        })
    });
    // 8 concurrent clients: total time / operations.
    let store = std::sync::Arc::new(store);
    let checksums = std::sync::Arc::new(checksums);
    g.bench_function("find_access_token_hit_x8", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (store, checksums) = (store.clone(), checksums.clone());
            async move {
                let start = std::time::Instant::now();
                let tasks: Vec<_> = (0..8u64)
                    .map(|t| {
                        let (store, checksums) = (store.clone(), checksums.clone());
                        tokio::spawn(async move {
                            for i in 0..iters.div_ceil(8) {
                                let k = ((t * 1_000_003 + i * 7919) as usize) % checksums.len();
                                assert!(store
                                    .find_access_token(&checksums[k])
                                    .await
                                    .unwrap()
                                    .is_some());
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            }
        })
    });
    let k = std::sync::Arc::new(AtomicU64::new(0));
    for clients in [8u64, 32] {
        g.bench_function(format!("insert_access_token_x{clients}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (store, k) = (store.clone(), k.clone());
                async move {
                    let start = std::time::Instant::now();
                    let tasks: Vec<_> = (0..clients)
                        .map(|_| {
                            let (store, k) = (store.clone(), k.clone());
                            tokio::spawn(async move {
                                for _ in 0..iters.div_ceil(clients) {
                                    let i = k.fetch_add(1, Ordering::Relaxed);
                                    store
                                        .issue_tokens(tokens(app_id, &format!("x8-{i}")))
                                        .await
                                        .unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                }
            })
        });
    }
    g.finish();
}

fn tokens(app_id: i64, value: &str) -> IssueTokens {
    let now = Timestamp::now();
    IssueTokens {
        access: NewAccessToken {
            resource: String::new(),
            token_checksum: token_checksum(value),
            application_id: Some(app_id),
            user_id: None,
            source_refresh_token_id: None,
            id_token_id: None,
            grant_id: None,
            expires: now.add_secs(36000),
            scope: "read write".into(),
            created: now,
        },
        refresh: None,
        id_token: None,
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
