"""How the token view styles a piece of text: its kind, GLTR rank tint, fall state and cursor.

The cursor token is drawn in reverse video; with rank colours on, tokens get a GLTR-style
background tint by rank (top-10 green, top-100 yellow, top-1000 red, the rest purple); the fall
token is bold red underlined and the text after it is dimmed; control characters, tabs and newline
markers have their own muted styles.
"""

from __future__ import annotations

from rich.style import Style
from textual.color import Color

from lmread.tui.document import KIND_CONTROL, KIND_NEWLINE, KIND_TAB

__all__ = ["RANK_BUCKETS", "RANK_REST_COLOUR", "piece_style", "rank_bucket"]

#: (upper rank bound, colour) of the GLTR-style rank tints; ranks are 1-based (1 = most likely).
RANK_BUCKETS: tuple[tuple[int, str], ...] = ((10, "#2ea043"), (100, "#d4a72c"), (1000, "#d1242f"))
RANK_REST_COLOUR = "#8250df"
_TINT_ALPHA = 0.45


def rank_bucket(rank: int | None) -> int:
    """0 for no rank, 1 for top-10, 2 for top-100, 3 for top-1000, 4 for the rest."""
    if rank is None:
        return 0
    for bucket, (bound, _) in enumerate(RANK_BUCKETS, start=1):
        if rank <= bound:
            return bucket
    return len(RANK_BUCKETS) + 1


def piece_style(base: Style, kind: int, bucket: int, fall_state: int, is_cursor: bool) -> Style:
    """The style of one piece over the widget's ``base`` style: kind (``KIND_*``), rank bucket (0
    when ranks are off), fall state (0 before the fall token, 1 the fall token, 2 after it) and
    the cursor (reverse video)."""
    parts: list[Style] = [base]
    if kind == KIND_CONTROL:
        parts.append(Style(color="magenta", bold=True))
    elif kind in (KIND_TAB, KIND_NEWLINE):
        parts.append(Style(dim=True))
    if bucket:
        background = Color.from_rich_color(base.bgcolor) if base.bgcolor else Color(0, 0, 0)
        hue = RANK_BUCKETS[bucket - 1][1] if bucket <= len(RANK_BUCKETS) else RANK_REST_COLOUR
        parts.append(Style(bgcolor=background.blend(Color.parse(hue), _TINT_ALPHA).rich_color))
    if fall_state == 1:
        parts.append(Style(color="red", bold=True, underline=True))
    elif fall_state == 2:
        parts.append(Style(dim=True))
    if is_cursor:
        parts.append(Style(reverse=True))
    return Style.combine(parts)
