"""What the user reads: one row per file (a table or JSON lines) and a summary at the end."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from predictor.engines import Answer, Prediction, Reading

MAX_PATH_WIDTH = 60
MAX_LISTED_FAILURES = 20


def top_k(prediction: Prediction, k: int) -> list[tuple[int, float]]:
    """The ``k`` most probable digits, most probable first (the prediction itself first)."""
    probs = prediction.probabilities
    others = [d for d in range(len(probs)) if d != prediction.digit]
    ranked = sorted(others, key=lambda d: -probs[d])
    return [(d, probs[d]) for d in [prediction.digit, *ranked][:k]]


def table_row(path: str, answer: Answer, k: int, width: int) -> str:
    """``path  digit  confidence  [runners-up]``, or ``path  error: why``."""
    label = path.ljust(min(width, MAX_PATH_WIDTH))
    if isinstance(answer, str):
        return f"{label}  error: {answer}"
    if isinstance(answer, Reading):
        return f"{label}  {answer.number}  " + ", ".join(
            f"{d['digit']} {d['confidence']:.2%}" + ("" if d["is_digit"] else " (not a digit?)")
            for d in answer.digits
        )
    row = f"{label}  {answer.digit}  {answer.confidence:7.2%}"
    if not answer.is_digit:
        row += "  (does not look like a digit)"
    if answer.detail:
        row += "  several signs side by side: a number? try --read"
    runners = top_k(answer, k)[1:]
    if runners:
        row += "  runners-up: " + ", ".join(f"{d} {p:.2%}" for d, p in runners)
    return row


def json_row(path: str, answer: Answer, k: int) -> str:
    """One JSON object per line; ``error`` is null for a prediction, the reason otherwise."""
    if isinstance(answer, str):
        record: dict = {
            "path": path,
            "digit": None,
            "confidence": None,
            "is_digit": None,
            "error": answer,
        }
    elif isinstance(answer, Reading):
        record = {"path": path, "number": answer.number, "digits": answer.digits, "error": None}
    else:
        record = {
            "path": path,
            "digit": answer.digit,
            "confidence": answer.confidence,
            "is_digit": answer.is_digit,
            "probabilities": answer.probabilities,
            "detail": answer.detail,
            "error": None,
        }
        if k > 1:
            record["top_k"] = [{"digit": d, "confidence": p} for d, p in top_k(answer, k)]
    return json.dumps(record)


@dataclass
class Summary:
    """Counts as rows are produced, and the closing lines."""

    digits: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    predicted: int = 0  # files answered

    def add(self, path: str, answer: Answer) -> None:
        if isinstance(answer, str):
            self.failures.append((path, answer))
            return
        self.predicted += 1
        if isinstance(answer, Reading):
            self.digits.update(d["digit"] for d in answer.digits)
        else:
            self.digits[answer.digit] += 1

    def lines(self, source: str, seconds: float) -> list[str]:
        total = self.predicted + len(self.failures)
        lines = [
            f"predicted {self.predicted} of {total} file{'s' * (total != 1)}, "
            f"{len(self.failures)} failed, in {seconds:.1f} s with {source}"
        ]
        if self.digits:
            lines.append("digits: " + "  ".join(f"{d}:{n}" for d, n in sorted(self.digits.items())))
        if self.failures:
            lines.append(f"failed ({len(self.failures)}):")
            lines.extend(f"  {path}: {why}" for path, why in self.failures[:MAX_LISTED_FAILURES])
            if len(self.failures) > MAX_LISTED_FAILURES:
                lines.append(f"  ... and {len(self.failures) - MAX_LISTED_FAILURES} more")
        return lines
