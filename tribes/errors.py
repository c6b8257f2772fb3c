"""Exceptions shared by the library's edges (ingest, importers, CLI)."""

from __future__ import annotations

__all__ = ["InputError", "TribesError"]


class TribesError(Exception):
    """Base class of the errors tribes raises on purpose."""


class InputError(TribesError):
    """Bad input from a user-supplied file or value: the CLI prints it and exits with 2.

    ``str()`` reads ``FILE:LINE: field: problem`` with whatever parts are known.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ):
        self.problem, self.path, self.line, self.field = problem, path, line, field
        where = ":".join(str(x) for x in (path, line) if x is not None)
        text = f"{field}: {problem}" if field else problem
        super().__init__(f"{where}: {text}" if where else text)
