"""A small CSV table with typed, validated column access for prompt files.

Every problem becomes a :class:`PromptError` that names the file, the column and the
line, so a user can fix a hand-edited CSV without reading a traceback.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import PromptError

_TRUE = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE = {"0", "0.0", "-0.0", "false", "f", "no", "n"}


@dataclass
class CsvTable:
    """Header (lower-cased, stripped) and string cells of a CSV file, blank lines dropped."""

    path: Path
    columns: list[str]
    rows: list[list[str]]
    lines: list[int]  # 1-based line of each row in the file, for messages

    def has(self, name: str) -> bool:
        return name in self.columns

    def text(self, name: str) -> list[str]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def numbers(self, name: str) -> np.ndarray:
        """Column ``name`` as float64; non-numeric or empty cells raise PromptError."""
        out = np.empty(len(self.rows), dtype=np.float64)
        for k, cell in enumerate(self.text(name)):
            try:
                out[k] = float(cell)
            except ValueError:
                raise PromptError(
                    f"{self.path.name}, line {self.lines[k]}: column '{name}' holds "
                    f"'{cell}', which is not a number; fix or remove that row."
                ) from None
            if not np.isfinite(out[k]):
                raise PromptError(
                    f"{self.path.name}, line {self.lines[k]}: column '{name}' holds "
                    f"'{cell}'; give a finite number."
                )
        return out

    def refuse(self, bad: np.ndarray, message: Callable[[int], str]) -> None:
        """PromptError ``"<file>, line <n>: <message(k)>"`` for the first row ``k`` where ``bad`` holds."""
        rows = np.flatnonzero(bad)
        if rows.size:
            k = int(rows[0])
            raise PromptError(f"{self.path.name}, line {self.lines[k]}: {message(k)}")

    def integers(self, name: str, what: str | None = None, tolerance: float = 1e-6) -> np.ndarray:
        """Column ``name`` as int64; values within ``tolerance`` of a whole number such as 2.0 are
        accepted, 2.5 is an error."""
        values = self.numbers(name)
        rounded = np.round(values)
        self.refuse(np.abs(values - rounded) > tolerance, lambda k: f"{what or name} '{self.text(name)[k]}' "
                    f"(column '{name}') is not an integer; use whole numbers.")
        return rounded.astype(np.int64)

    def booleans(self, name: str) -> np.ndarray:
        """Column ``name`` as bool from 1/0, true/false or yes/no."""
        out = np.empty(len(self.rows), dtype=bool)
        for k, cell in enumerate(self.text(name)):
            key = cell.strip().lower()
            if key in _TRUE:
                out[k] = True
            elif key in _FALSE:
                out[k] = False
            else:
                raise PromptError(
                    f"{self.path.name}, line {self.lines[k]}: column '{name}' holds "
                    f"'{cell}'; use 1 (positive) or 0 (negative)."
                )
        return out


def read_csv_table(path: Path) -> CsvTable:
    """Parse ``path``; empty files, ragged rows and files without rows raise PromptError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            records = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise PromptError(f"{path.name} is not a text CSV file; save the prompts as CSV.") from None
    except OSError as exc:
        raise PromptError(f"Cannot read prompt file {path} ({exc.strerror}); check the path.") from None
    numbered = [(i + 1, r) for i, r in enumerate(records) if any(c.strip() for c in r)]
    if not numbered:
        raise PromptError(f"Prompt file {path.name} is empty; save a Points or Shapes layer to it.")
    _, header = numbered[0]
    columns = [c.strip().lower() for c in header]
    if len(set(columns)) != len(columns):
        raise PromptError(f"{path.name} has duplicate column names {header}; rename them.")
    rows, lines = [], []
    for line, record in numbered[1:]:
        if len(record) != len(columns):
            raise PromptError(
                f"{path.name}, line {line}: {len(record)} values for {len(columns)} columns; "
                "fix that row."
            )
        rows.append([c.strip() for c in record])
        lines.append(line)
    if not rows:
        raise PromptError(f"Prompt file {path.name} has a header but no prompts; add at least one row.")
    return CsvTable(path=path, columns=columns, rows=rows, lines=lines)
