"""The Dagster layer: thin assets, checks, partitions, resources and automation over plain modules."""
