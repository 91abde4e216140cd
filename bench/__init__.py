"""Speed and memory benchmarks: `make bench` runs them; results go in docs/performance.md."""
