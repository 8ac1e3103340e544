"""Typed notices: every warning line the toolkit prints beside a number (an extrapolation beyond a law's fitted
range, a latency from an uncalibrated profile, a law without a range, a search that ended on its bound) is a
`Notice`. It reads as the line users see (it is a ``str``: ``"KIND: TEXT"``, printed by `cli.output.print_warnings`,
written as text into reports; ``--json`` also lists each with its fields under ``"notices"``), and code reads its
fields (``kind``, ``quantity``, ``value``, ``range``, ``source``), never its text.

Pure: the standard library only; the shared bottom every layer may import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Notice", "notice_kind"]


class Notice(str):
    """A warning line with what it is about."""

    kind: str
    """``extrapolation``, ``uncalibrated``, ``unchecked``, ``search_bound``, ``unpriced``, ..."""
    text: str
    """The line without its ``KIND: `` prefix."""
    quantity: str | None
    """The symbol of the quantity (``N``, ``D``, ``D/N``, ``d_model/n_layers``, ``loss``, ...)."""
    value: float | None
    range: tuple[float, float] | None
    """The range the value left."""
    source: str | None
    """Whose range: ``law`` (the runs a law was fitted on), ``profile`` (the sizes a profile was calibrated on)."""

    def __new__(cls, kind: str, text: str, *, quantity: str | None = None, value: float | None = None,
                range: tuple[float, float] | None = None, source: str | None = None) -> Notice:  # noqa: A002
        obj = super().__new__(cls, f"{kind}: {text}")
        obj.kind, obj.text, obj.quantity, obj.value, obj.range, obj.source = kind, text, quantity, value, range, source
        return obj

    def about(self, subject: str) -> Notice:
        """The same notice said of ``subject`` (``extrapolation: d512x8: N = ...``)."""
        return Notice(self.kind, f"{subject}: {self.text}", quantity=self.quantity, value=self.value,
                      range=self.range, source=self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "quantity": self.quantity, "value": self.value,
                "range": None if self.range is None else list(self.range), "source": self.source}

    def __reduce__(self) -> tuple[Any, ...]:  # survives a process pool
        return (_rebuild, (self.kind, self.text, self.quantity, self.value, self.range, self.source))


def _rebuild(kind: str, text: str, quantity: str | None, value: float | None, rng: tuple[float, float] | None,
             source: str | None) -> Notice:
    return Notice(kind, text, quantity=quantity, value=value, range=rng, source=source)


def notice_kind(line: str) -> str | None:
    """The kind of a notice; None for a plain line (a fit's diagnostic read back from a saved file)."""
    return line.kind if isinstance(line, Notice) else None
