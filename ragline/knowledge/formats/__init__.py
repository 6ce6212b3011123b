"""One module per document format: raw bytes or text in, (title, text) out. Ids, sidecars,
metadata and hashes are the same for every format: ragline/knowledge/sources.py."""
