//! How flag values are read: CPU lists (`--cores`), byte sizes (`64kb`, `1gb`) and Redis's
//! `yes`/`no`. Pure functions, shared by the CLI and CONFIG SET.

use super::ConfigError;

/// Parse `all` or `0,2-5` into CPU ids, each of which must be available.
pub fn parse_cpu_list(spec: &str, available: &[usize]) -> Result<Vec<usize>, ConfigError> {
    if spec.trim().eq_ignore_ascii_case("all") {
        if available.is_empty() {
            return Err(ConfigError::Cores(
                "no CPU is available to this process".into(),
            ));
        }
        return Ok(available.to_vec());
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| ConfigError::Cores(format!("'{part}' is not a CPU number or range")))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| ConfigError::Cores(format!("'{part}' is not a CPU number or range")))?;
        if lo > hi {
            return Err(ConfigError::Cores(format!("range '{part}' is backwards")));
        }
        for cpu in lo..=hi {
            if !available.contains(&cpu) {
                return Err(ConfigError::Cores(format!(
                    "CPU {cpu} is not available to this process (available: {available:?})"
                )));
            }
            if !out.contains(&cpu) {
                out.push(cpu);
            }
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Cores("empty CPU list".into()));
    }
    Ok(out)
}

/// `yes` or `no` (Redis's spelling for boolean settings; `true` and `false` too).
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, got {s:?}")),
    }
}

/// Parse a byte size the way Redis's config does: `1000`, `64kb`, `100mb`, `1gb` (powers of
/// 1024; `k`, `m`, `g` are powers of 1000).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (try 1048576, 64kb, 100mb, 1gb)"))?;
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use b, kb, mb, gb)")),
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("'{s}' is too large"))
}
