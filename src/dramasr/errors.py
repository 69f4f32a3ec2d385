"""The one exception type for problems a user can cause (bad files, bad options).

Its message names the file, episode, line and field (or the option) and says what to do;
the CLI prints it without a traceback and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class DramaError(Exception):
    """A user-fixable problem with input data or options."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        episode: int | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.episode = episode
        self.line = line
        self.field = field
        self.hint = hint
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.episode is not None:
            where.append(f"episode {self.episode}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field and self.field.startswith("--"):
            where.append(f"option {self.field}")
        elif self.field:
            where.append(f"field '{self.field}'")
        text = (", ".join(where) + ": " if where else "") + self.reason
        if self.hint:
            text += f" ({self.hint})"
        return text
