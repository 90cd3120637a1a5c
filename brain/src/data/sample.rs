//! The built-in synthetic retail sample: `stores`, `products` and `transactions`.
//!
//! Deterministic: the same row count always gives the same data (a fixed-seed SplitMix64
//! generator, no clock, no global RNG), so examples and benchmarks are reproducible.

use polars::prelude::*;

use super::DataError;

/// Stores in the sample.
pub const STORES: usize = 50;
/// Products in the sample.
pub const PRODUCTS: usize = 500;
/// First transaction timestamp: 2025-01-01T00:00:00Z, in milliseconds.
const START_MS: i64 = 1_735_689_600_000;
/// Transactions spread over one year.
const SPAN_MS: u64 = 365 * 24 * 3600 * 1000;
const SEED: u64 = 0x005E_ED0F_ED6E_B4A1;

const CITIES: [(&str, &str); 10] = [
    ("Berlin", "north"),
    ("Hamburg", "north"),
    ("Bremen", "north"),
    ("Munich", "south"),
    ("Stuttgart", "south"),
    ("Nuremberg", "south"),
    ("Cologne", "west"),
    ("Dusseldorf", "west"),
    ("Leipzig", "east"),
    ("Dresden", "east"),
];
const CATEGORIES: [&str; 8] = [
    "produce",
    "dairy",
    "bakery",
    "beverages",
    "snacks",
    "household",
    "frozen",
    "meat",
];

/// SplitMix64: tiny, fast, and good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The three sample tables, by dataset name.
#[derive(Debug)]
pub struct SampleTables {
    pub stores: DataFrame,
    pub products: DataFrame,
    pub transactions: DataFrame,
}

/// Generates the sample with `transactions` transaction rows.
pub fn generate(transactions: usize) -> Result<SampleTables, DataError> {
    let mut rng = Rng(SEED);

    let store_ids: Vec<i64> = (1..=STORES as i64).collect();
    let mut cities = Vec::with_capacity(STORES);
    let mut regions = Vec::with_capacity(STORES);
    let mut sizes = Vec::with_capacity(STORES);
    for _ in 0..STORES {
        let (city, region) = CITIES[rng.below(CITIES.len() as u64) as usize];
        cities.push(city);
        regions.push(region);
        sizes.push(200 + rng.below(1800) as i32);
    }
    let stores = df!(
        "store_id" => store_ids,
        "city" => cities,
        "region" => regions,
        "floor_m2" => sizes
    )
    .map_err(DataError::polars)?;

    let product_ids: Vec<i64> = (1..=PRODUCTS as i64).collect();
    let mut names = Vec::with_capacity(PRODUCTS);
    let mut categories = Vec::with_capacity(PRODUCTS);
    let mut list_prices = Vec::with_capacity(PRODUCTS);
    for id in 1..=PRODUCTS {
        let category = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
        names.push(format!("{category}-{id:04}"));
        categories.push(category);
        // 0.50 .. 50.00, in cents.
        list_prices.push((50 + rng.below(4951)) as f64 / 100.0);
    }
    let products = df!(
        "product_id" => product_ids,
        "name" => names,
        "category" => categories,
        "list_price" => list_prices.clone()
    )
    .map_err(DataError::polars)?;

    let mut ids = Vec::with_capacity(transactions);
    let mut timestamps = Vec::with_capacity(transactions);
    let mut transaction_stores = Vec::with_capacity(transactions);
    let mut transaction_products = Vec::with_capacity(transactions);
    let mut quantities = Vec::with_capacity(transactions);
    let mut unit_prices = Vec::with_capacity(transactions);
    let mut promotions = Vec::with_capacity(transactions);
    for id in 0..transactions {
        ids.push(id as i64 + 1);
        timestamps.push(START_MS + rng.below(SPAN_MS) as i64);
        transaction_stores.push(1 + rng.below(STORES as u64) as i64);
        let product = rng.below(PRODUCTS as u64) as usize;
        transaction_products.push(product as i64 + 1);
        // Mostly 1–3 items, sometimes up to 12.
        let quantity = if rng.unit() < 0.9 {
            1 + rng.below(3)
        } else {
            1 + rng.below(12)
        };
        quantities.push(quantity as i32);
        let promoted = rng.unit() < 0.15;
        promotions.push(promoted);
        let discount = if promoted { 0.8 } else { 1.0 };
        unit_prices.push((list_prices[product] * discount * 100.0).round() / 100.0);
    }
    let transactions = df!(
        "transaction_id" => ids,
        "ts" => timestamps,
        "store_id" => transaction_stores,
        "product_id" => transaction_products,
        "quantity" => quantities,
        "unit_price" => unit_prices,
        "promotion" => promotions
    )
    .and_then(|frame| {
        frame
            .lazy()
            .with_column(col("ts").cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
            .collect()
    })
    .map_err(DataError::polars)?;

    Ok(SampleTables {
        stores,
        products,
        transactions,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_deterministic_and_sized_as_asked() {
        let first = generate(1000).unwrap();
        let second = generate(1000).unwrap();
        assert_eq!(first.transactions, second.transactions);
        assert_eq!(first.products, second.products);
        assert_eq!(first.transactions.height(), 1000);
        assert_eq!(first.stores.height(), STORES);
        assert_eq!(first.products.height(), PRODUCTS);
        // Every foreign key resolves.
        let stores = first.transactions.column("store_id").unwrap();
        let max_store = stores.as_materialized_series().max::<i64>().unwrap();
        assert!(max_store.unwrap() <= STORES as i64);
    }
}
