"""Messages and small value types shared by the reader's screens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message

#: The bundled models a first live session offers.
BUNDLED_MODELS = ("smollm2-135m", "gemma3-270m")


@dataclass
class LiveConfig:
    """What a live session generates: ``n`` samples of each model, continuing prompts of a set."""

    models: list[str] = field(default_factory=lambda: list(BUNDLED_MODELS))
    n: int = 3
    max_tokens: int = 256
    prompt_set: str = "all"
    temperature: float = 1.0


class OpenStudy(Message):
    """Ask the app to open the reader on a study folder."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class StartLive(Message):
    """Ask the app to start a live session."""

    def __init__(self, config: LiveConfig) -> None:
        super().__init__()
        self.config = config
