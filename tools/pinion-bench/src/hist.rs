//! Histogram files: HdrHistogram's percentile-distribution text (what pinion's
//! `--hist-dump` and our `--hist-out` write) and the V2 interval log (`.hlog`, what
//! HdrHistogram's Java and wrk2 tools read). Reading either gives back a histogram in
//! nanoseconds; the text form is rebuilt from its rows, so it keeps the resolution of the
//! rows (five per halving of the tail), which is what its percentile curve shows anyway.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::engine::new_hist;

/// HdrHistogram's text table, values divided by `scale` (1000: ns shown as µs): the
/// node's own formatter, so our files and its `--hist-dump` are one format.
pub fn percentile_text(h: &Histogram<u64>, scale: f64) -> String {
    let mut out = String::new();
    pinion::metrics::hist::percentile_distribution(h, scale, &mut out);
    out
}

/// Rebuild a histogram (ns) from percentile text in µs (`TotalCount` cumulative).
pub fn parse_percentile_text(text: &str) -> anyhow::Result<Histogram<u64>> {
    let mut rows: Vec<(f64, u64)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || line.trim_start().starts_with('#') {
            continue;
        }
        let (Ok(v), Ok(_q), Ok(c)) = (
            f[0].parse::<f64>(),
            f[1].parse::<f64>(),
            f[2].parse::<u64>(),
        ) else {
            continue;
        };
        rows.push((v, c));
    }
    if rows.is_empty() {
        bail!("no percentile rows found");
    }
    let mut h = new_hist();
    let mut prev = 0;
    for (v, c) in rows {
        let Some(n) = c.checked_sub(prev) else {
            bail!("TotalCount falls from {prev} to {c}: not a cumulative percentile table");
        };
        prev = c;
        if n > 0 {
            h.record_n((v * 1000.0).round().max(1.0) as u64, n)?;
        }
    }
    Ok(h)
}

/// Write `h` (ns) as `path` (percentile text, µs) and `path` + `.hlog` (V2 interval log,
/// one interval covering the run).
pub fn write_files(
    path: &Path,
    h: &Histogram<u64>,
    title: &str,
    seconds: f64,
) -> anyhow::Result<()> {
    let mut text = format!("# {title} unit=us\n");
    text.push_str(&percentile_text(h, 1000.0));
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    let mut log = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment(title)
            .with_start_time(SystemTime::now())
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut log, &mut ser)?;
        w.write_histogram(
            h,
            Duration::ZERO,
            Duration::from_secs_f64(seconds.max(0.0)),
            None,
        )
        .map_err(|e| anyhow::anyhow!("encoding the histogram log: {e:?}"))?;
    }
    // Java's HistogramLogWriter puts a CSV legend before the first interval; its readers
    // (HistogramLogAnalyzer, the online plotter) expect it.
    let text = String::from_utf8_lossy(&log);
    let mut out = String::new();
    let mut legend = false;
    for line in text.lines() {
        if !legend && !line.starts_with('#') {
            out.push_str(LEGEND);
            out.push('\n');
            legend = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    let hlog = hlog_path(path);
    std::fs::write(&hlog, out).with_context(|| format!("writing {}", hlog.display()))?;
    Ok(())
}

const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

pub fn hlog_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".hlog");
    s.into()
}

/// Read one histogram from a file: an interval log (every interval added), percentile
/// text, or one section of a pinion `--hist-dump` (`FILE@op=read` picks the first section
/// whose header contains `op=read`; the merged `shard=all` sections come first).
pub fn read(spec: &str) -> anyhow::Result<Histogram<u64>> {
    let (path, section) = match spec.rsplit_once('@') {
        Some((p, s)) if !s.contains('/') => (p, Some(s)),
        _ => (spec, None),
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let text = String::from_utf8_lossy(&bytes);
    if path.ends_with(".hlog") || text.contains("#[StartTime") {
        let mut h = new_hist();
        let mut de = Deserializer::new();
        for entry in IntervalLogIterator::new(&bytes) {
            let entry = entry.map_err(|e| anyhow::anyhow!("{path}: bad interval log: {e:?}"))?;
            if let LogEntry::Interval(i) = entry {
                let raw = base64_decode(i.encoded_histogram())
                    .with_context(|| format!("{path}: bad base64 in an interval"))?;
                let part: Histogram<u64> = de
                    .deserialize(&mut std::io::Cursor::new(raw))
                    .map_err(|e| anyhow::anyhow!("{path}: bad histogram: {e:?}"))?;
                h.add(&part)?;
            }
        }
        return Ok(h);
    }
    let body = match section {
        None => text.to_string(),
        Some(sel) => {
            // Sections start at a "# ... histogram ..." line; take the first that matches.
            let mut found: Option<String> = None;
            let mut inside = false;
            for line in text.lines() {
                if line.starts_with("# ") && line.contains("histogram") {
                    if found.is_some() {
                        break;
                    }
                    inside = line.contains(sel);
                    if inside {
                        found = Some(String::new());
                    }
                } else if inside {
                    if let Some(f) = found.as_mut() {
                        f.push_str(line);
                        f.push('\n');
                    }
                }
            }
            found.with_context(|| format!("{path}: no section matching '{sel}'"))?
        }
    };
    parse_percentile_text(&body).with_context(|| format!("reading {spec}"))
}

fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(s.trim())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = new_hist();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap(); // 1 µs .. 10 ms
        }
        h
    }

    #[test]
    fn text_and_log_files_read_back_to_the_same_percentiles() {
        let dir = std::env::temp_dir().join(format!("pinion-bench-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("run.txt");
        let h = sample();
        write_files(&p, &h, "test", 1.0).unwrap();
        let from_log = read(hlog_path(&p).to_str().unwrap()).unwrap();
        assert_eq!(from_log.len(), h.len());
        assert_eq!(from_log.value_at_quantile(0.99), h.value_at_quantile(0.99));
        let from_text = read(p.to_str().unwrap()).unwrap();
        assert_eq!(from_text.len(), h.len());
        for q in [0.5, 0.9, 0.99] {
            let (a, b) = (
                from_text.value_at_quantile(q) as f64,
                h.value_at_quantile(q) as f64,
            );
            assert!((a - b).abs() / b < 0.01, "q {q}: {a} vs {b}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_section_of_a_node_dump_is_picked_by_name() {
        let mut a = new_hist();
        a.record_n(5_000, 10).unwrap();
        let mut b = new_hist();
        b.record_n(900_000, 3).unwrap();
        let dump = format!(
            "# pinion histogram shard=all op=read unit=us\n{}\n# pinion histogram shard=all op=write unit=us\n{}\n",
            percentile_text(&a, 1000.0),
            percentile_text(&b, 1000.0)
        );
        let p = std::env::temp_dir().join(format!("pinion-bench-dump-{}", std::process::id()));
        std::fs::write(&p, dump).unwrap();
        let w = read(&format!("{}@op=write", p.display())).unwrap();
        assert_eq!(w.len(), 3);
        assert!(w.max() >= 899_000);
        assert!(read(&format!("{}@op=nothing", p.display())).is_err());
        std::fs::remove_file(&p).unwrap();
        assert!(parse_percentile_text("nothing here").is_err());
    }
}
