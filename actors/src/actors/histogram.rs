//! A lock-free, fixed-size, log-scale histogram of durations in microseconds.
//!
//! Recording is three relaxed atomic adds and a `fetch_max`, so every actor
//! on every arbiter can share one. Buckets: exact below 16 µs, then 8 linear
//! sub-buckets per power of two, so a percentile is at most 12.5% high
//! (it reports the bucket's upper bound, capped at the largest value seen).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below this get a bucket each.
const EXACT: u64 = 16;
/// log2 of the sub-buckets per power of two.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// 2^4 .. 2^63: 60 powers of two, 8 sub-buckets each, after the exact ones.
const BUCKETS: usize = EXACT as usize + (64 - 4) * SUB as usize;

pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .field("max", &self.max())
            .finish()
    }
}

/// Bucket of a value in microseconds.
fn index(micros: u64) -> usize {
    if micros < EXACT {
        return usize::try_from(micros).unwrap_or(0);
    }
    let exponent = u64::from(63 - micros.leading_zeros());
    let sub = (micros >> (exponent - u64::from(SUB_BITS))) & (SUB - 1);
    let index = EXACT + (exponent - 4) * SUB + sub;
    usize::try_from(index).unwrap_or(BUCKETS - 1)
}

/// Largest value (µs) that lands in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    let index = u64::try_from(index).unwrap_or(u64::MAX);
    if index < EXACT {
        return index;
    }
    let exponent = (index - EXACT) / SUB + 4;
    let sub = (index - EXACT) % SUB;
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    // (8 + sub + 1) * width - 1; the top bucket's bound overflows to MAX.
    (SUB + sub + 1)
        .checked_mul(width)
        .map_or(u64::MAX, |end| end - 1)
}

impl Histogram {
    pub fn record(&self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = self.buckets.get(index(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros.load(Ordering::Relaxed))
    }

    pub fn mean(&self) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.sum_micros.load(Ordering::Relaxed) / count)
    }

    /// The value at or below which `p` percent (0..=100) of the samples lie,
    /// rounded up to its bucket's bound. Zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        // Sum the buckets rather than read `count`: a concurrent `record`
        // could otherwise leave the rank beyond what the buckets hold.
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let fraction = if p.is_nan() {
            1.0
        } else {
            p.clamp(0.0, 100.0) / 100.0
        };
        // Float to integer casts saturate; the rank is at least 1.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((fraction * total as f64).ceil() as u64).clamp(1, total);
        let max = self.max_micros.load(Ordering::Relaxed);
        let mut seen = 0u64;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(upper_bound(i).min(max));
            }
        }
        Duration::from_micros(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_reads_zero() {
        let h = Histogram::default();
        assert_eq!(h.count(), 0);
        assert_eq!(h.percentile(50.0), Duration::ZERO);
        assert_eq!(h.percentile(100.0), Duration::ZERO);
        assert_eq!(h.mean(), Duration::ZERO);
    }

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        // Every value falls in a bucket whose bound is >= it, and the
        // previous bucket's bound is below it.
        for micros in (0..5000).chain([u64::MAX / 2, u64::MAX - 1, u64::MAX]) {
            let i = index(micros);
            assert!(i < BUCKETS, "{micros}");
            assert!(upper_bound(i) >= micros, "{micros} in {i}");
            if i > 0 {
                assert!(upper_bound(i - 1) < micros, "{micros} in {i}");
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact() {
        let h = Histogram::default();
        for micros in 0..10 {
            h.record(Duration::from_micros(micros));
        }
        assert_eq!(h.count(), 10);
        assert_eq!(h.percentile(50.0), Duration::from_micros(4));
        assert_eq!(h.percentile(100.0), Duration::from_micros(9));
        assert_eq!(h.percentile(0.0), Duration::ZERO);
    }

    #[test]
    fn percentiles_are_within_an_eighth() {
        let h = Histogram::default();
        // 1 ms .. 1000 ms, uniform.
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        for (p, exact) in [(50.0, 500u64), (90.0, 900), (99.0, 990)] {
            let got = h.percentile(p).as_micros();
            let exact = u128::from(exact) * 1000;
            assert!(got >= exact, "p{p}: {got} < {exact}");
            assert!(got <= exact + exact / 8, "p{p}: {got} vs {exact}");
        }
        assert_eq!(h.percentile(100.0), Duration::from_millis(1000));
        assert_eq!(h.max(), Duration::from_millis(1000));
        assert_eq!(h.mean(), Duration::from_micros(500_500));
    }

    #[test]
    fn one_outlier_shows_at_the_top_only() {
        let h = Histogram::default();
        for _ in 0..999 {
            h.record(Duration::from_micros(200));
        }
        h.record(Duration::from_secs(3));
        assert!(h.percentile(99.0) <= Duration::from_micros(225));
        assert_eq!(h.percentile(100.0), Duration::from_secs(3));
    }

    #[test]
    fn records_from_many_threads() {
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.record(Duration::from_micros(i * 4 + t));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.count(), 40_000);
        assert_eq!(h.max(), Duration::from_micros(39_999));
    }
}
