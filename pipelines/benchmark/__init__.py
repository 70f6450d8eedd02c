"""The strategy comparison harness: cycles over seeds, reports, paired tests, label savings."""
