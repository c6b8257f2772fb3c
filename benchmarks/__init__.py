"""Benchmarks for tribes: ``python -m benchmarks`` (``make bench``) measures and writes RESULTS.md.

Sections (``--only``): ``recompute`` (generate → ingest → recompute per size, per-stage time and
memory, graph bytes per edge), ``api`` (gunicorn + wrk against a minimal Flask app side by
side), ``ingest`` (events/s from a file and through ``POST /v1/events``), ``latency`` (cold-start
suggestions, personalized PageRank per source).

Benchmarks live apart from the tests: they time things and print figures; tests never time.
Everything they write goes under ``var/bench/``; every server they start listens on
127.0.0.1 only and is stopped before the run ends, also on errors.
"""
