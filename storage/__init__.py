"""History store (SQLite through sqlite-utils)."""
