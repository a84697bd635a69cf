"""The result of `sam2pp eval`: summary numbers, per-sequence numbers, a printable table and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EvalResult:
    """Scores of one evaluation.

    summary: the contract's keys (CONTRACT.md section 3) -> fractions in [0, 1].
    per_sequence: row name (vos: "<video>_<obj_id>", sot: "<video>", pt: "<video>") -> metric -> value;
        diagnostic only, since the summary is not always their mean (GOT-10k pools frames).
    """

    mode: str
    summary: dict[str, float]
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """One JSON-ready object: the summary keys at top level, then `mode` and `per_sequence`."""
        return {**self.summary, "mode": self.mode, "per_sequence": self.per_sequence}

    def to_json(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        """Aligned text table: one row per sequence (or object), then the dataset summary row."""
        columns = list(self.summary)
        rows = [(name, values) for name, values in self.per_sequence.items()]
        rows.append((f"{self.mode} overall", self.summary))
        name_width = max(len(name) for name, _ in rows)
        widths = [max(len(c), 6) for c in columns]
        header = "  ".join([" " * name_width] + [c.rjust(w) for c, w in zip(columns, widths)])
        lines = [header, "-" * len(header)]
        for i, (name, values) in enumerate(rows):
            if i == len(rows) - 1 and len(rows) > 1:
                lines.append("-" * len(header))
            cells = [_cell(values.get(c), w) for c, w in zip(columns, widths)]
            lines.append("  ".join([name.ljust(name_width)] + cells))
        return "\n".join(lines)


def _cell(value: float | None, width: int) -> str:
    if value is None:
        return "".rjust(width)
    if math.isnan(value):
        return "nan".rjust(width)
    return f"{value:.4f}".rjust(width)
