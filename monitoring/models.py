"""Drift monitors, monitoring batches and drift results (issue: monitoring)."""
