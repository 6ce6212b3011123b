"""One module per schema revision, oldest first (see each module's down_revision)."""
