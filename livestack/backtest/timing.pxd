# Per-event latency measurement of the core for benchmarks (reads the clock: never used by the core).
