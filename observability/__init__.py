"""What the engineer on call sees: metrics, structured logs and error reports.

Below every other package (it imports neither Flask, SQLAlchemy nor RQ), so that the web, the
jobs, the sync and the connectors can all report through it without an import running upward.
"""
