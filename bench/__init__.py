"""Benchmarks that print figures and ratios; not part of the test run."""
