"""Strategy specifications: tiny constructed pools (`strategies.testing`) with known answers."""
