"""Console commands: one small file per command."""
