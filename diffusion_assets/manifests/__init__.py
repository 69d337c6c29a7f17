"""Parquet manifests: the index of every artifact and the tables lineage is joined from."""
