"""The compliance workflow: review records, signed review links, the review web app,
escalation of changes nobody reviewed, and the audit export (issue 16)."""
