//! Any delivery order, with duplicates, in batches of any size, applied through the SQLite
//! store and reloaded, gives the state of applying the events once in order.

use crate::support::*;
use proptest::prelude::*;
use switchboard_contracts::SettingsChange;
use switchboard_projections::{Projection, Record, Store};

const TENANTS: [&str; 2] = ["acme", "globex"];
const NUMBERS: [&str; 2] = ["+16502530000", "+16502530001"];
const PHONES: [&str; 5] = [
    "+14158675310",
    "(415) 867-5310",
    "020 7946 0018",
    "+12064561234",
    "not a number",
];

fn phone() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(&PHONES[..]).prop_map(String::from))
}

/// One change with version 0; versions are assigned per entity afterwards.
fn change() -> impl Strategy<Value = SettingsChange> {
    let t = prop::sample::select(&TENANTS[..]);
    prop_oneof![
        (
            t.clone(),
            phone(),
            prop::option::of(prop::sample::select(&["US", "GB"][..]))
        )
            .prop_map(|(t, p, r)| company(t, 0, p.as_deref(), r)),
        (t.clone(), prop::sample::select(&NUMBERS[..]), phone()).prop_map(|(t, n, p)| number(
            t,
            n,
            0,
            p.as_deref()
        )),
        (t.clone(), prop::sample::select(&["u1", "u2"][..]), phone()).prop_map(|(t, u, p)| user(
            t,
            u,
            0,
            p.as_deref()
        )),
        (
            t,
            prop::sample::select(&["c1", "c2", "c3"][..]),
            prop::collection::vec(prop::sample::select(&PHONES[..]), 0..3),
            prop::option::of(prop::sample::select(&["u1", "u2"][..])),
            any::<bool>(),
        )
            .prop_map(|(t, c, phones, assigned, deleted)| {
                let mut change = contact(t, c, 0, &phones, assigned);
                if let SettingsChange::Contact(c) = &mut change {
                    c.deleted = deleted;
                }
                change
            }),
    ]
}

/// Changes with versions increasing per entity in generation order.
fn history() -> impl Strategy<Value = Vec<SettingsChange>> {
    prop::collection::vec(change(), 1..30).prop_map(|mut changes| {
        let mut versions = std::collections::HashMap::new();
        for c in &mut changes {
            let v = versions
                .entry((c.tenant_id().clone(), c.key()))
                .or_insert(0u64);
            *v += 1;
            match c {
                SettingsChange::Company(s) => s.version = *v,
                SettingsChange::Number(s) => s.version = *v,
                SettingsChange::User(s) => s.version = *v,
                SettingsChange::Contact(s) => s.version = *v,
            }
        }
        changes
    })
}

/// A history, and a delivery of it: shuffled, some events repeated, cut into batches.
fn delivered() -> impl Strategy<Value = (Vec<SettingsChange>, Vec<SettingsChange>, Vec<usize>)> {
    history().prop_flat_map(|changes| {
        let n = changes.len();
        let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        let repeats = prop::collection::vec((0..n, 0..=n), 0..n);
        let batches = prop::collection::vec(1usize..8, 1..10);
        (Just(changes), order, repeats, batches).prop_map(|(changes, order, repeats, batches)| {
            let mut delivery: Vec<SettingsChange> =
                order.iter().map(|&i| changes[i].clone()).collect();
            for (i, at) in repeats {
                delivery.insert(at.min(delivery.len()), changes[i].clone());
            }
            (changes, delivery, batches)
        })
    })
}

fn in_order(changes: &[SettingsChange]) -> Projection {
    let mut projection = Projection::new();
    for (i, c) in changes.iter().enumerate() {
        projection.apply(&record(i as u64 + 1, c.clone()));
    }
    projection
}

async fn through_store(delivery: &[Record], batches: &[usize]) -> Projection {
    let backend = Backend::sqlite();
    let store = Store::open(backend.url()).await.unwrap();
    let mut rest = delivery;
    for size in batches.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (batch, tail) = rest.split_at((*size).min(rest.len()));
        store.apply_batch(batch).await.unwrap();
        rest = tail;
    }
    assert_eq!(store.position().await.unwrap(), delivery.len() as u64);
    Store::open(backend.url())
        .await
        .unwrap()
        .load()
        .await
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_delivery_converges_to_the_in_order_state((changes, delivery, batches) in delivered()) {
        let records: Vec<Record> = delivery
            .iter()
            .enumerate()
            .map(|(i, c)| record(i as u64 + 1, c.clone()))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let stored = runtime.block_on(through_store(&records, &batches));
        let expected = dump(&in_order(&changes), &changes);
        prop_assert_eq!(&dump(&stored, &changes), &expected);

        let mut in_memory = Projection::new();
        for r in &records {
            in_memory.apply(r);
        }
        prop_assert_eq!(&dump(&in_memory, &changes), &expected);
        prop_assert_eq!(stored.applied_seq(), records.len() as u64);
    }
}
