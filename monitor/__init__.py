"""fdawatch's monitor: history, diffs, severity, alerts, digest, scheduler and the CLI."""
