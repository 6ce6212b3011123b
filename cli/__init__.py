"""The `ragline` command: one module per subcommand, each a thin adapter over ragline/."""
