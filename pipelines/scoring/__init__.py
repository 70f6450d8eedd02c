"""Scoring the pool: the local and the Ray engine, and the Parquet shards they write."""
