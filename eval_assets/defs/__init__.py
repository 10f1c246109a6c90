"""The Dagster side of evalgate: partitions, assets, checks, sensors and automation, one module per domain."""
