"""One benchmark result: a measured quantity and its target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BenchResult:
    """One measured quantity and its target.

    ``comparison`` is ``">="`` or ``"<="``: the target is met when ``value comparison target``.
    """

    name: str
    value: float
    unit: str
    target: float | None = None
    comparison: str = ">="
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None without a target)."""
        if self.target is None:
            return None
        return self.value >= self.target if self.comparison == ">=" else self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object (with ``met``)."""
        out = asdict(self)
        out["met"] = self.met
        return out
