"""Every state change of monitoring: monitors, batches, drift checks, compliance alerts."""
