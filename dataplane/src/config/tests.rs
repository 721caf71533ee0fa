use super::*;

#[test]
fn cpu_lists() {
    let avail = [0, 1, 2, 3, 4, 5];
    assert_eq!(parse_cpu_list("all", &avail).unwrap(), avail.to_vec());
    assert_eq!(parse_cpu_list("0,2-4", &avail).unwrap(), vec![0, 2, 3, 4]);
    assert!(parse_cpu_list("7", &avail).is_err());
    assert!(parse_cpu_list("3-1", &avail).is_err());
    assert!(parse_cpu_list("x", &avail).is_err());
    assert!(parse_cpu_list("", &avail).is_err());
}

#[test]
fn byte_sizes() {
    assert_eq!(parse_bytes("100"), Ok(100));
    assert_eq!(parse_bytes("64kb"), Ok(65536));
    assert_eq!(parse_bytes("1GB"), Ok(1 << 30));
    assert_eq!(parse_bytes("2m"), Ok(2_000_000));
    assert!(parse_bytes("ten").is_err());
    assert!(parse_bytes("1tb").is_err());
}

#[test]
fn inert_settings_check_values_as_redis_does() {
    let find = |n: &str| INERT_SETTINGS.iter().find(|s| s.named(n)).unwrap();
    assert_eq!(
        find("hash-max-ziplist-entries").check("1000"),
        Ok("1000".into())
    );
    assert_eq!(
        find("hash-max-listpack-value").check("1kb"),
        Ok("1024".into())
    );
    assert_eq!(find("appendonly").check("YES"), Ok("yes".into()));
    assert_eq!(
        find("appendonly").check("maybe"),
        Err("argument must be 'yes' or 'no'".into())
    );
    assert_eq!(
        find("lua-time-limit").check("x"),
        Err("argument couldn't be parsed into an integer".into())
    );
    assert!(find("active-expire-effort").check("11").is_err());
    assert!(find("appendfsync").check("sometimes").is_err());
    // Every default passes its own check, and names are unique.
    let mut names = std::collections::HashSet::new();
    for s in INERT_SETTINGS {
        assert_eq!(s.check(s.default).as_deref(), Ok(s.default), "{}", s.name);
        assert!(names.insert(s.name) && s.alias.is_none_or(|a| names.insert(a)));
    }
}

#[test]
fn defaults_validate() {
    let c = Config::parse_from(["pinion"]);
    c.validate().unwrap();
    for bad in [
        &["--recv-buffers", "100"][..],
        &["--max-message-bytes", "200mb"],
        &["--default-partitions", "0"],
        &["--eviction-samples", "65"],
        &["--expire-keys-per-tick", "0"],
        &["--recv-buffers", "32768", "--recv-buffer-bytes", "1048576"],
        &["--ring-capacity", "2000000"],
        &["--output-buffer-limit-bytes", "1000"],
        &["--memory-budget", "1mb"],
        &["--memory-budget", "1gb", "--maxmemory", "1000mb"],
        &["--resp-tls-listen", "127.0.0.1:0"],
        &["--kafka-tls-listen", "127.0.0.1:0", "--tls-cert", "c.pem"],
        &["--tls-cert", "c.pem", "--tls-key", "k.pem"],
        &["--auth-block-ms", "0"],
        &["--auth-failure-window-ms", "0"],
    ] {
        let c = Config::parse_from(std::iter::once("pinion").chain(bad.iter().copied()));
        assert!(c.validate().is_err(), "{bad:?} should be refused");
    }
}
