"""The `dvc repro` stages: one small `alod` command each (configure + run)."""
