"""Helpers of the CLI tests: a synthetic events file, and a command's ``--json`` output."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import orjson

from tribes.cli import main
from tribes.jsonl import open_output, write_jsonl
from tribes.synth import SynthConfig, generate


def synthetic_events_file(path: Path, n_users: int = 200, seed: int = 2) -> Path:
    """The generator's events for ``n_users`` users (``seed``) as JSON Lines at ``path``."""
    with open_output(path) as out:
        write_jsonl(generate(SynthConfig(n_users=n_users, seed=seed)), out)
    return path


def run_cli_json(argv: list[str]) -> tuple[int, Any]:
    """``tribes ARGV`` in process: its exit code and its standard output parsed as JSON."""
    buffer = io.BytesIO()
    with contextlib.redirect_stdout(io.TextIOWrapper(buffer)) as wrapper:
        code = main(argv)
        wrapper.flush()
    return code, orjson.loads(buffer.getvalue()) if buffer.getvalue() else None
