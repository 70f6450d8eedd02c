"""Box-level queries: partial labels, the box oracle, dampened noisy-label training."""
