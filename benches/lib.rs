//! Micro-benchmarks live in this package's bench targets (`cargo bench -p pinion-benches`);
//! side-by-side scripts against real peers sit beside them as shell scripts.
