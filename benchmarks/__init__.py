"""xpnet's benchmarks: every implementation of a workload timed in the same
process run, alternating, after a warm-up; see README.md and ``run.py``."""
