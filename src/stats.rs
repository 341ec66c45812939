//! Small statistics shared by the stages: quantiles and the median of samples (bootstrap
//! intervals, Monte Carlo rank intervals, peer medians), and a stable string hash (seeds
//! per territory, file names).

/// Quantile `q` of sorted values, interpolating linearly between order statistics
/// (R's type 7).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Median of `v` (sorted in place), None when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    // (a + b)/2 rather than the 0.5 quantile's a + (b − a)/2: the bits the charts and
    // scorecards have always had.
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// FNV-1a: a hash that is the same on every machine and every run (std's is not).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64: tiny, fast, good enough for synthetic data, bootstrap and Monte Carlo
/// draws, and stable forever (seeded outputs stay byte-identical across versions).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The generator as it will be after `n` more draws: SplitMix64's state is a
    /// counter, so streams can be split without drawing through them.
    pub fn skipped(&self, n: u64) -> Self {
        Rng(self.0.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_generator_continues_the_stream() {
        let mut a = Rng::new(42);
        let b = a.skipped(1000);
        for _ in 0..1000 {
            a.next_u64();
        }
        let mut b = b;
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!((quantile(&v, 0.025), quantile(&v, 0.975)), (2.5, 97.5));
    }
}
