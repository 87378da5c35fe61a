"""User-facing errors.

Every mistake a user can make (a bad file, a missing port, a wrong option) is raised as a
:class:`GestureError`; the ``gesture`` CLI prints its message and exits with status 2 instead
of showing a traceback. ``capture`` is the most upstream package, so the one error type lives
here and ``training`` and ``dashboard`` import it.
"""
from __future__ import annotations

from pathlib import Path


class GestureError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do."""


class DataError(GestureError):
    """Malformed input data: names the file, line, field and what was expected."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None,
                 field: str | None = None, offset: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.offset = offset
        where = self.path
        if line is not None:
            where += f", line {line}"
        if offset is not None:
            where += f", byte offset {offset}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
