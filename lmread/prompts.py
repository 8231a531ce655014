"""Prompts for generation: built-in prompt sets, prompt files, and single prompts.

A prompt is a plain dict ``{"text": ..., "set": ..., "name": ...}``; a sample records it as its
``prompt`` (a frozen :class:`~lmread.records.Prompt` with the same fields).  The built-in sets are openings of long-form text in seven genres, written
for lmread (each a few sentences that invite a long continuation).  Names are stable
(``story-03``), so samples from different runs and machines line up.

Prompt files: a ``.jsonl``/``.json`` file holds one JSON object per line, ``{"text": ...,
"name": optional, "set": optional}``; any other file holds one prompt per line (blank lines are
skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from lmread.errors import OptionError

#: genre set name -> prompt openings (order fixed: the index gives the stable name)
_SETS: dict[str, tuple[str, ...]] = {
    "encyclopedia": (
        "The Kessler River is a river in the central highlands, about 340 kilometres long. It rises in a "
        "chain of glacial lakes below Mount Aubert and flows east through a narrow valley before widening "
        "into a marshy delta. The river has been used for transport since at least the eleventh century.",
        "Copper smelting is the process of extracting metallic copper from its ores by heating them with a "
        "reducing agent. The earliest evidence of the practice dates to the fifth millennium BCE. Over the "
        "following centuries, smelters learned to",
        "The common swift (Apus apus) is a medium-sized bird that spends almost its entire life in the air. "
        "Adults eat, drink and often sleep while flying, and a young swift may not land for two or three "
        "years after leaving the nest. The species breeds across Europe and",
        "The Treaty of Halvard was an agreement signed in 1712 between three coastal cities that had fought "
        "over fishing rights for most of the previous century. Its forty clauses covered harbour fees, the "
        "settlement of debts and the return of prisoners. Historians disagree about",
        "A sundial is a device that tells the time of day from the position of a shadow cast by the sun. "
        "The part that casts the shadow, called the gnomon, is usually a thin rod or a sharp edge. For the "
        "dial to read correctly, the gnomon must be",
        "Fermentation is a metabolic process in which microorganisms such as yeast and bacteria convert "
        "sugars into acids, gases or alcohol without using oxygen. People have relied on it for thousands "
        "of years to make bread, beer, cheese and pickles. The chemistry of the process",
    ),
    "news": (
        "Residents of the harbour district woke on Tuesday to find the main road under half a metre of "
        "water after a storm surge overtopped the sea wall shortly before dawn. No injuries were reported, "
        "but the city council said",
        "The regional rail operator announced on Monday that it will cut fares on all commuter lines by a "
        "fifth from the start of next month, in an effort to win back passengers lost during two years of "
        "delays and strikes. The decision",
        "A team of volunteers surveying a disused quarry outside the town has found what appear to be the "
        "remains of a Roman villa, including a mosaic floor and part of a heated bath. The county "
        "archaeologist said on Friday that",
        "The city's largest hospital will open a new emergency department next spring, doubling the number "
        "of beds available for urgent care, the health authority said in a statement on Thursday. "
        "Construction of the wing began",
        "Farmers in the eastern valleys say this year's apple harvest is the smallest in two decades, after "
        "a late frost in April destroyed much of the blossom. Prices at the wholesale market have already",
        "The local football club has appointed a new head coach after a season in which it narrowly avoided "
        "relegation. The 41-year-old, who spent most of his playing career abroad, told reporters at his "
        "first press conference that",
    ),
    "story": (
        "The letter arrived on the same morning the well ran dry, and Mara decided that this could not be a "
        "coincidence. She read it twice standing in the doorway, then folded it into her apron pocket and "
        "went to find her brother.",
        "Nobody in the village had ever seen the lighthouse keeper leave the island, so when his boat came "
        "into the harbour on a grey Sunday afternoon, half the town walked down to the quay to watch him "
        "tie up.",
        "My grandmother kept a jar of buttons on the kitchen windowsill, and every button, she claimed, had "
        "a story. The day after her funeral I took the jar home with me, tipped it out on the table, and",
        "The train stopped in the middle of the forest, and for a long time nothing happened. Then the "
        "conductor walked slowly through the carriage, not looking at anyone, and stepped down onto the "
        "gravel beside the track.",
        "It had rained for eleven days when Tomas found the door at the back of the bookshop, behind a "
        "shelf of atlases that no one had touched in years. It was smaller than an ordinary door and painted "
        "a deep green.",
        "The twins had agreed never to swap places again after what happened at the wedding. But on the "
        "morning of the exam, Lena woke up with a fever, and Sofia stood in front of the mirror practising "
        "her sister's smile.",
    ),
    "list": (
        "Ten things to check before you buy a used bicycle:\n\n1. The frame. Look closely for cracks, dents "
        "and rust, especially around the joints.\n2.",
        "Here are twelve easy houseplants for people who forget to water them, with a short note on each.\n\n"
        "1. Snake plant: tolerates low light and can go weeks without water.\n2.",
        "The most useful kitchen tools, ranked by how often I actually use them:\n\n1. A sharp chef's knife. "
        "Nothing else comes close.\n2.",
        "Fifteen questions to ask at the end of a job interview:\n\n1. What does a typical week in this role "
        "look like?\n2.",
        "A packing list for a week of hiking in the mountains in early autumn:\n\n- Waterproof jacket and "
        "trousers\n- Two pairs of wool socks\n-",
        "Common mistakes beginners make when learning to play the guitar, and how to avoid them:\n\n1. "
        "Pressing the strings too hard. You need less force than you think.\n2.",
    ),
    "letter": (
        "Dear Aunt Helen,\n\nThank you so much for the parcel, which arrived yesterday in perfect condition. "
        "The children have not stopped talking about the kite, and",
        "Dear Sir or Madam,\n\nI am writing to complain about the repair of my washing machine, which your "
        "technician visited on the third of this month. Since that visit, the machine",
        "Dear Mr. Okafor,\n\nI would like to apply for the position of library assistant advertised on your "
        "website last week. I have worked with books for most of my life, first",
        "My dear Jonas,\n\nIt is very late and the house is quiet, and I find that I cannot sleep until I "
        "have written to you. So much has happened since you left that I hardly know",
        "To the members of the allotment committee,\n\nAs many of you will know, the water supply to the "
        "lower plots has failed three times this summer. I am writing to propose",
        "Dear Ms. Lindqvist,\n\nThank you for your letter of 12 March and for the kind words about our "
        "exhibition. In answer to your question about the lending of the two paintings,",
    ),
    "dialogue": (
        "\"You're late,\" said the captain, without looking up from the map.\n\"The road was flooded,\" "
        "Ana replied. \"We had to go round by the mill.\"\n\"And the supplies?\"\n",
        "CUSTOMER: Hello, I bought this kettle here last week and it has already stopped working.\n"
        "SHOP ASSISTANT: I'm sorry to hear that. Do you have the receipt with you?\nCUSTOMER:",
        "Interviewer: You grew up on a farm. How did that shape the way you write?\nNovelist: More than I "
        "realised at the time. On a farm, you learn that",
        "\"Is it true you've never seen the sea?\" asked Paolo.\nHis grandfather shook his head. \"Not once. "
        "I always meant to go.\"\n\"Then why didn't you?\"\n",
        "TEACHER: Today we're going to talk about why the sky is blue. Does anyone have an idea?\nSTUDENT: "
        "Is it because it reflects the ocean?\nTEACHER:",
        "Mother: Did you finish your homework before you went out?\nDaniel: Mostly.\nMother: What does "
        "\"mostly\" mean?\nDaniel:",
    ),
    "howto": (
        "How to bake a simple loaf of bread\n\nYou need only four ingredients: flour, water, salt and yeast. "
        "Start by mixing 500 grams of flour with 10 grams of salt in a large bowl.",
        "How to repair a puncture in a bicycle inner tube\n\nFirst, remove the wheel from the bike and let "
        "out any remaining air. Then use two tyre levers to",
        "How to start a vegetable garden on a balcony\n\nBefore you buy any seeds, spend a day watching how "
        "much sun your balcony gets. Most vegetables need at least six hours of direct light, so",
        "How to write a clear email to someone you have never met\n\nKeep the subject line short and "
        "specific. In the first sentence, say who you are and why you are writing.",
        "How to clean a cast-iron pan without ruining it\n\nLet the pan cool a little, but clean it while it "
        "is still warm. Scrape out any food with a wooden spatula, then",
        "How to prepare for your first half marathon\n\nGive yourself at least twelve weeks. In the first "
        "month, the aim is simply to run three or four times a week at an easy pace,",
    ),
}

#: prefixes of the stable prompt names per set
_PREFIX = {"encyclopedia": "encyclopedia", "news": "news", "story": "story", "list": "list",
           "letter": "letter", "dialogue": "dialogue", "howto": "howto"}

#: sets made of other sets
_GROUPS: dict[str, tuple[str, ...]] = {"all": tuple(_SETS)}


def prompt_set_names() -> list[str]:
    """Names of the built-in prompt sets (genres, then ``all``)."""
    return [*_SETS, *_GROUPS]


def builtin_set(name: str) -> list[dict[str, Any]]:
    """The prompts of built-in set ``name`` (``all`` = every genre); :class:`OptionError` if unknown."""
    key = name.strip().lower()
    if key in _GROUPS:
        return [p for sub in _GROUPS[key] for p in builtin_set(sub)]
    if key not in _SETS:
        raise OptionError(f"unknown prompt set {name!r}: use one of {', '.join(prompt_set_names())}")
    return [
        {"text": text, "set": key, "name": f"{_PREFIX[key]}-{i:02d}"}
        for i, text in enumerate(_SETS[key], start=1)
    ]


def single_prompt(text: str, name: str = "prompt-01", set_name: str = "cli") -> dict[str, Any]:
    """A prompt given on the command line; :class:`OptionError` if empty."""
    if not isinstance(text, str) or not text.strip():
        raise OptionError("--prompt is empty: give the opening text to continue")
    return {"text": text, "set": set_name, "name": name}


def load_prompt_file(path: str | Path) -> list[dict[str, Any]]:
    """Read prompts from ``path`` (JSONL for ``.jsonl``/``.json``, else one prompt per line).

    The set defaults to the file's stem and names to ``STEM-01``, ``STEM-02``...  Raises
    :class:`OptionError` naming the file (and line) for a missing, empty or malformed file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise OptionError(f"prompts file {path} does not exist; give a text or JSONL file of prompts") from None
    except IsADirectoryError:
        raise OptionError(f"prompts file {path} is a folder; give a text or JSONL file of prompts") from None
    except OSError as exc:
        raise OptionError(f"cannot read prompts file {path}: {exc.strerror}") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OptionError(f"prompts file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    stem = path.stem or "prompts"
    prompts: list[dict[str, Any]] = []
    is_jsonl = path.suffix.lower() in {".jsonl", ".json", ".ndjson"}
    for line_no, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        if is_jsonl:
            prompts.append(_parse_json_line(path, line_no, line, stem, len(prompts) + 1))
        else:
            prompts.append({"text": line, "set": stem, "name": f"{stem}-{len(prompts) + 1:02d}"})
    if not prompts:
        raise OptionError(f"prompts file {path} has no prompts; write one prompt per line")
    return check_prompts(prompts, str(path))


def _parse_json_line(path: Path, line_no: int, line: str, stem: str, index: int) -> dict[str, Any]:
    where = f"prompts file {path}: line {line_no}"
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise OptionError(f"{where} is not valid JSON; write one {{\"text\": ...}} object per line") from None
    if not isinstance(record, dict):
        raise OptionError(f"{where} is not a JSON object; write one {{\"text\": ...}} object per line")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise OptionError(f"{where} has no non-empty string \"text\"")
    out = {"text": text, "set": stem, "name": f"{stem}-{index:02d}"}
    for key in ("name", "set"):
        if key in record and record[key] is not None:
            value = record[key]
            if not isinstance(value, str) or not value.strip():
                raise OptionError(f"{where}: \"{key}\" must be a non-empty string")
            out[key] = value.strip()
    return out


def check_prompts(prompts: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Refuse duplicate (set, name) pairs, which would make samples ambiguous; return ``prompts``."""
    seen: set[tuple[str, str]] = set()
    for p in prompts:
        key = (p["set"], p["name"])
        if key in seen:
            raise OptionError(f"{where}: prompt name {p['name']!r} appears twice in set {p['set']!r}; make names unique")
        seen.add(key)
    return prompts
