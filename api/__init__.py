"""The tribes JSON API (Flask). Thin over the tribes library."""
