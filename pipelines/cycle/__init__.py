"""What a cycle shares between stages: the data layout, the simulation oracle, ultralytics train/val."""
