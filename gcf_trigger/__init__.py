"""Google Cloud Functions (gen2) entrypoints."""
