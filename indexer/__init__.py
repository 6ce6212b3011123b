"""The indexer CLI: build, list and promote index versions."""
