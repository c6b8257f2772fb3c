"""The baseline for the API figures: the least a Flask app under the same gunicorn can do.

``gunicorn -c gunicorn.conf.py 'benchmarks.minimal_app:create_app()'`` serves
``GET /v1/users/<user_id>/minimal``: a ~2 KB JSON body shaped like a suggestions page (built
once, serialised with orjson per request, as the real views do), with no store, no model, no
middleware. The ratio endpoint/minimal requests per second says what tribes adds on top.
"""

from __future__ import annotations

import orjson
from flask import Flask, Response

__all__ = ["create_app", "page"]


def page(user_id: str) -> dict:
    """A body of about 2 KB: 8 items with a score, a tribe and two reasons each."""
    items = [
        {
            "user_id": f"u{100_000 + i:06d}",
            "score": round(0.9 - i / 50, 5),
            "tribe_id": i % 3,
            "reasons": [
                {
                    "kind": "shared_topics",
                    "text": "You both talk about rust, pi, robots",
                    "topics": ["rust", "pi", "robots"],
                },
                {"kind": "same_tribe", "text": "In your tribe: makers", "tribe_id": i % 3},
            ],
        }
        for i in range(8)
    ]
    return {
        "user_id": user_id,
        "model_version": "minimal",
        "cold_start": False,
        "items": items,
        "next_cursor": None,
    }


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/v1/users/<user_id>/minimal")
    def minimal(user_id: str):
        return Response(orjson.dumps(page(user_id)), mimetype="application/json")

    @app.get("/livez")
    def livez():
        return Response(b'{"status":"ok"}', mimetype="application/json")

    return app
