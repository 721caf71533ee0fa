//! HdrHistogram's percentile-distribution text format, as Java's
//! `outputPercentileDistribution` and wrk2 print it, so existing HdrHistogram tools
//! (the online plotter, `HistogramLogAnalyzer`) read our dumps.

use hdrhistogram::Histogram;

/// Append the distribution of `h` with values divided by `scale` (1000: ns → µs).
pub fn percentile_distribution(h: &Histogram<u64>, scale: f64, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        let _ = writeln!(
            out,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
            0.0, 0.0
        );
        let _ = writeln!(
            out,
            "#[Max     = {:>12.3}, Total count    = {:>12}]",
            0.0, 0
        );
        return;
    }
    // TotalCount is cumulative (values at or below the row's), as Java prints it.
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:>12.3} {q:>2.12} {total:>10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_the_standard_columns_and_footer() {
        let mut h = crate::metrics::new_hist();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let mut s = String::new();
        percentile_distribution(&h, 1000.0, &mut s);
        assert!(s.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(s.contains(", Total count    =         1000]"), "{s}");
        // The median row reads about 500 µs.
        let median = s.lines().find(|l| l.contains(" 0.500000000000 ")).unwrap();
        let v: f64 = median.split_whitespace().next().unwrap().parse().unwrap();
        assert!((499.0..=501.0).contains(&v), "{median}");
        let count = |l: &str| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap();
        assert!(
            (495..=505).contains(&count(median)),
            "TotalCount is cumulative: {median}"
        );
        let last = s.lines().rfind(|l| l.starts_with(' ')).unwrap();
        assert_eq!(count(last), 1000, "{last}");
    }
}
