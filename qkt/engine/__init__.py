"""The engine: incremental indicators, rules, paper broker and portfolio (pure, no I/O)."""
