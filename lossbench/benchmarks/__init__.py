"""Benchmark machinery: metrics now; sweep specification, planner and executors next."""
