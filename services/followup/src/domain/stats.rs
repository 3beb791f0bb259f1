//! The statistics behind the reports: proportions with Wilson intervals, means with normal
//! intervals, a two-proportion test, percentiles. Small groups get no figure at all.

const Z95: f64 = 1.959_963_984_540_054;

/// Rate and Wilson 95% interval of `hits` out of `n`; `None` when `n` is 0.
pub fn wilson(n: i64, hits: i64) -> Option<(f64, f64, f64)> {
    if n <= 0 {
        return None;
    }
    let (n, p) = (n as f64, hits as f64 / n as f64);
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * ((p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / (1.0 + z2 / n);
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Mean and 95% interval (normal approximation) of values given as count, sum and sum of
/// squares; `None` below two values.
pub fn mean_interval(n: i64, sum: f64, sum_sq: f64) -> Option<(f64, f64, f64)> {
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    let variance = ((sum_sq - nf * mean * mean) / (nf - 1.0)).max(0.0);
    let half = Z95 * (variance / nf).sqrt();
    Some((mean, mean - half, mean + half))
}

/// Whether two proportions differ at the 95% level (pooled two-proportion z-test).
pub fn proportions_differ(n1: i64, h1: i64, n2: i64, h2: i64) -> Option<bool> {
    if n1 <= 0 || n2 <= 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (h1 + h2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return Some(false);
    }
    let z = (h1 as f64 / n1f - h2 as f64 / n2f) / se;
    Some(z.abs() > Z95)
}

/// The `q` quantile (0–1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn wilson_matches_the_textbook() {
        // 81 of 263 (Wilson 1927 style example): 0.308 [0.255, 0.366].
        let (p, lo, hi) = wilson(263, 81).unwrap();
        assert!(close(p, 0.308), "{p}");
        assert!(close(lo, 0.255), "{lo}");
        assert!(close(hi, 0.366), "{hi}");
        let (_, lo, hi) = wilson(10, 10).unwrap();
        assert!(hi <= 1.0 && lo > 0.6);
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn mean_interval_and_tests() {
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (n, sum, sq) = (8, values.iter().sum::<f64>(), values.iter().map(|v| v * v).sum::<f64>());
        let (mean, lo, hi) = mean_interval(n, sum, sq).unwrap();
        assert!(close(mean, 5.0));
        // sample sd = 2.138; half-width = 1.96 * 2.138 / sqrt(8) = 1.4816
        assert!(close(hi - mean, 1.4816), "{}", hi - mean);
        assert!(close(mean - lo, 1.4816));
        assert_eq!(mean_interval(1, 3.0, 9.0), None);
        assert_eq!(proportions_differ(200, 20, 200, 60), Some(true));
        assert_eq!(proportions_differ(20, 2, 20, 3), Some(false));
        assert_eq!(
            quantile(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9),
            Some(9.0)
        );
    }
}
