"""Demo data: real Paris sites from paris_sites.csv, with invented units (see README.md here)."""
