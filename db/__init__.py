"""fdawatch's storage layer: SQLModel tables, the engine and the migrations.

Imports nothing of ours, so every other layer can depend on it. Nothing is imported here:
`db.engine` alone (SQLAlchemy Core) must not load SQLModel and the tables, which quick commands
such as `fdawatch sources` never need.
"""
