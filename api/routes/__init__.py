"""Blueprints of the API, one module per area; each view parses, calls one library method,
and returns JSON."""
