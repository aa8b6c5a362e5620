//! `ml_pet_advisor`: a CPU-bound recommender run on its own thread pool. It
//! scores every pet by cosine similarity between the pet's features and the
//! customer's profile (the mean of the pets they bought, plus the pet being
//! viewed). When it cannot answer (too slow, or its pool is full), the
//! recommendations fall back to the pets sold most, and say so.

use crate::error::DepError;
use crate::model::Pet;
use resilience_runtime::api_call;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A recommended pet and its score in [0, 1].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Recommendation {
    pub pet_id: i64,
    pub name: String,
    pub score: f64,
}

/// Recommendations, and why they are the fallback's when they are.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Advice {
    pub recommendations: Vec<Recommendation>,
    /// Set when the model failed and these are the most popular pets instead.
    pub fallback: Option<String>,
}

/// The model's fault switch (extra time per request, as a slow model server
/// would take) and the sales it ranks pets by when it cannot answer.
#[derive(Clone, Default)]
pub struct Advisor {
    slow_ms: Arc<AtomicU64>,
    sales: Arc<Mutex<BTreeMap<i64, u64>>>,
}

impl Advisor {
    /// Counts a sale of `pet_id` for the popularity fallback.
    pub fn record_sale(&self, pet_id: i64) {
        *self.sales.lock().unwrap().entry(pet_id).or_default() += 1;
    }

    /// Makes each recommendation take at least `extra` longer.
    pub fn set_slowness(&self, extra: Duration) {
        self.slow_ms
            .store(extra.as_millis() as u64, Ordering::Relaxed);
    }
}

fn features(pet: &Pet) -> BTreeMap<String, f64> {
    let mut f = BTreeMap::new();
    f.insert(format!("species:{}", pet.species), 3.0);
    for word in pet.breed.split(' ') {
        f.insert(format!("breed:{word}"), 1.5);
    }
    for t in &pet.traits {
        f.insert(format!("trait:{t}"), 1.0);
    }
    f.insert(format!("age:{}", pet.age_years.min(5)), 0.5);
    f.insert(format!("price:{}", (pet.price_cents / 25_000).min(3)), 0.75);
    f
}

fn cosine(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> f64 {
    let dot: f64 = a.iter().filter_map(|(k, x)| b.get(k).map(|y| x * y)).sum();
    let norm = |v: &BTreeMap<String, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
    let n = norm(a) * norm(b);
    if n == 0.0 {
        0.0
    } else {
        dot / n
    }
}

/// The `limit` best pets for a customer who owns `history` and is looking at
/// `focus`, leaving out those and any pet out of stock. Not `idempotent`:
/// retrying a model that timed out would only queue more work on its full
/// pool; the fallback answers instead.
#[api_call(dependency = "ml_pet_advisor", operation = "recommend", fallback = most_popular)]
pub fn recommend(
    advisor: Advisor,
    catalogue: Vec<Pet>,
    history: Vec<Pet>,
    focus: Option<Pet>,
    limit: usize,
) -> Result<Advice, DepError> {
    let slow = advisor.slow_ms.load(Ordering::Relaxed);
    if slow > 0 {
        std::thread::sleep(Duration::from_millis(slow));
    }
    let mut profile: BTreeMap<String, f64> = BTreeMap::new();
    let seen: Vec<&Pet> = history.iter().chain(focus.as_ref()).collect();
    if seen.is_empty() {
        return Ok(Advice::default());
    }
    for pet in &seen {
        for (k, v) in features(pet) {
            *profile.entry(k).or_default() += v / seen.len() as f64;
        }
    }
    let mut scored: Vec<Recommendation> = catalogue
        .iter()
        .filter(|p| p.stock > 0 && !seen.iter().any(|s| s.id == p.id))
        .map(|p| Recommendation {
            pet_id: p.id,
            name: p.name.clone(),
            score: (cosine(&profile, &features(p)) * 1000.0).round() / 1000.0,
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.pet_id.cmp(&b.pet_id)));
    scored.truncate(limit);
    Ok(Advice {
        recommendations: scored,
        fallback: None,
    })
}

/// The fallback of [`recommend`]: the `limit` pets sold most (ties by id),
/// with the same exclusions, scored by their share of sales. Degraded but
/// useful, and `fallback` says why.
pub fn most_popular(
    advisor: Advisor,
    catalogue: Vec<Pet>,
    history: Vec<Pet>,
    focus: Option<Pet>,
    limit: usize,
    error: DepError,
) -> Result<Advice, DepError> {
    let sales = advisor.sales.lock().unwrap().clone();
    let total = sales.values().sum::<u64>().max(1) as f64;
    let seen = |id: i64| history.iter().chain(focus.as_ref()).any(|s| s.id == id);
    let mut ranked: Vec<Recommendation> = catalogue
        .iter()
        .filter(|p| p.stock > 0 && !seen(p.id))
        .map(|p| Recommendation {
            pet_id: p.id,
            name: p.name.clone(),
            score: (sales.get(&p.id).copied().unwrap_or(0) as f64 / total * 1000.0).round()
                / 1000.0,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.pet_id.cmp(&b.pet_id)));
    ranked.truncate(limit);
    Ok(Advice {
        recommendations: ranked,
        fallback: Some(format!(
            "the most popular pets instead ({})",
            error.reason()
        )),
    })
}
