"""The county: its files (files), importing them (store) and the in-memory index."""
