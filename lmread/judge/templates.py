"""Judge prompt templates: the shipped ones, user templates from files, and how they are filled.

A template is plain text with placeholders in braces:

* ``{prompt}`` (required): the prompt the text continues, as a reader sees it;
* ``{sentences}`` (required): the generated text as numbered sentences, ``[1] ...`` per line;
* ``{categories}``: lmread's failure categories, ``key: label`` per line;
* ``{n_sentences}``: how many sentences there are;
* ``{format}``: how to answer (the JSON fields).  A template without it gets the answer format
  appended after its text, so every judge is asked for the same machine-readable answer.

Only these names are placeholders; any other brace text (a JSON example) is left as written,
and a ``{word}`` that is not one of them is an error (a misspelt placeholder).  A template's
identity in marks is its id and the SHA-256 of its text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from lmread.errors import OptionError
from lmread.records import CATEGORIES

REQUIRED = ("prompt", "sentences")
OPTIONAL = ("categories", "n_sentences", "format")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")

#: how to answer, shared by every template (the JSON schema of :mod:`lmread.judge.answer`)
ANSWER_FORMAT = """Answer with one JSON object and nothing else:
- if the text never falls: {"falls": false}
- if it falls: {"falls": true, "sentence": N, "quote": "the first wrong words, copied exactly from sentence N", \
"category": one of the category keys, "severity": 1 (mild), 2 (clear) or 3 (severe)}"""


@dataclass(frozen=True)
class Template:
    """A judge prompt template: ``id`` (in annotator names), its text, and where it came from."""

    id: str
    text: str
    source: str = "shipped"

    @property
    def sha256(self) -> str:
        """SHA-256 of the template text (recorded with every mark)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def check(self) -> Template:
        """Raise :class:`OptionError` unless the id is usable and the placeholders are right."""
        if not _ID.match(self.id):
            raise OptionError(f"template name {self.id!r} is not allowed: use 1-24 lowercase letters, digits, "
                              "'-' or '_', starting with a letter or digit")
        found = set(_PLACEHOLDER.findall(self.text))
        missing = [p for p in REQUIRED if p not in found]
        if missing:
            raise OptionError(f"template {self.id!r} ({self.source}) lacks the placeholder(s) "
                              f"{', '.join('{' + m + '}' for m in missing)}: a judge must see the prompt and the text")
        unknown = sorted(found - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise OptionError(f"template {self.id!r} ({self.source}) has unknown placeholder(s) "
                              f"{', '.join('{' + u + '}' for u in unknown)}; known: "
                              + ", ".join("{" + p + "}" for p in (*REQUIRED, *OPTIONAL)))
        return self

    def render(self, prompt: str, sentences: str, n_sentences: int) -> str:
        """The user message for one sample."""
        values = {
            "prompt": prompt,
            "sentences": sentences,
            "categories": category_list(),
            "n_sentences": str(n_sentences),
            "format": ANSWER_FORMAT,
        }
        text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.text)
        if "{format}" not in self.text:
            text = text.rstrip() + "\n\n" + ANSWER_FORMAT
        return text


def category_list() -> str:
    """lmread's failure categories as ``key: label`` lines."""
    return "\n".join(f"{key}: {label}" for key, label in CATEGORIES)


SHIPPED: dict[str, Template] = {
    t.id: t
    for t in (
        Template("first-wrong", """You are checking machine-written text. Below is a prompt and the text a \
model wrote after it, split into numbered sentences.

Prompt:
{prompt}

Text:
{sentences}

Find the first place where the text falls: the first words that no careful human writer would have \
written there (repetition, contradiction, drifting off the prompt, a switch of genre, nonsense, a \
factual or commonsense error, broken grammar, bad logic). If the whole text reads as something a \
person could have written, it does not fall.

Categories:
{categories}

{format}"""),
        Template("editor", """Imagine you are an editor reading a draft that continues the opening below. \
Read it sentence by sentence and stop at the first sentence you would have to cut or rewrite because \
it stops making sense.

Opening:
{prompt}

Draft ({n_sentences} sentences):
{sentences}

If you would publish the draft as it is, say it does not fall. Otherwise give the sentence number, \
quote the first words that are wrong exactly as they appear, and say what kind of problem it is:
{categories}

{format}"""),
        Template("strict", """Task: locate the earliest failure in a continuation.
PROMPT: {prompt}
CONTINUATION (numbered sentences):
{sentences}
A failure is any token sequence a competent writer would not produce in this context. Minor style \
issues are not failures. Report the earliest one only.
Allowed categories: {categories}
{format}"""),
    )
}


def load_template_file(spec: str) -> Template:
    """A user template from ``PATH`` (id: the file name's stem) or ``NAME=PATH``; checked."""
    name, sep, path_text = spec.partition("=")
    if not sep:
        name, path_text = "", spec
    path = Path(path_text).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptionError(f"template file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"cannot read template file {path}: {exc}") from None
    tid = (name or path.stem).strip().lower()
    if tid in SHIPPED:
        raise OptionError(f"template name {tid!r} is a shipped template; name yours NAME=PATH")
    return Template(tid, text, source=str(path)).check()


def resolve_templates(names: list[str], files: list[str]) -> list[Template]:
    """The templates of a run: shipped ones by name (``all`` for every one) and user files.

    No names and no files: the first shipped template.  An unknown name is an :class:`OptionError`.
    """
    chosen: list[Template] = []
    for item in names:
        for name in (n.strip() for n in item.split(",")):
            if not name:
                continue
            if name == "all":
                chosen.extend(SHIPPED.values())
                continue
            template = SHIPPED.get(name)
            if template is None:
                raise OptionError(f"unknown template {name!r}: use one of {', '.join(SHIPPED)}, all, "
                                  "or --template-file PATH")
            chosen.append(template)
    chosen.extend(load_template_file(spec) for spec in files)
    if not chosen:
        chosen.append(next(iter(SHIPPED.values())))
    out: dict[str, Template] = {}
    for t in chosen:
        if t.id in out and out[t.id].text != t.text:
            raise OptionError(f"two templates are named {t.id!r}; name one NAME=PATH")
        out[t.id] = t.check()
    return list(out.values())
