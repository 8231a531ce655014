"""Read model-file headers without loading weights: GGUF metadata and tensor infos, safetensors headers.

GGUF layout (versions 1-3, little-endian): magic ``GGUF``, ``uint32`` version, tensor count and
metadata count (``uint64``; ``uint32`` in version 1), then the metadata key/value pairs, then one
info per tensor (name, number of dims, dims, ggml type, data offset).  Only this header is read;
large arrays (the tokenizer vocabulary and merges) are stepped over and kept as
:class:`GGUFArray` placeholders that remember their length.

safetensors layout: an 8-byte little-endian header length ``N``, then ``N`` bytes of JSON mapping
tensor names to ``{"dtype", "shape", "data_offsets"}`` (plus an optional ``__metadata__``).
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmread.errors import ModelError

GGUF_MAGIC = b"GGUF"

# GGUF metadata value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(8, 13)

#: fixed-size scalar types: type -> struct format
_SCALAR_FORMATS: dict[int, str] = {
    T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I", T_INT32: "<i",
    T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d",
}
_SCALAR_SIZES: dict[int, int] = {t: struct.calcsize(f) for t, f in _SCALAR_FORMATS.items()}

#: arrays longer than this are not decoded (kept as :class:`GGUFArray` with their length)
ARRAY_DECODE_LIMIT = 256

#: llama.cpp ``general.file_type`` (llama_ftype) -> quantization name
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_1_SOME_F16", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS",
    24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS",
    31: "IQ1_M", 32: "BF16", 33: "Q4_0_4_4", 34: "Q4_0_4_8", 35: "Q4_0_8_8", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}

#: ggml tensor type -> name (used when a file has no ``general.file_type``)
TENSOR_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
    11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
    18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
    25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
    39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
}

#: the most tensors / metadata entries / dims a sane file has (guards against garbage counts)
_MAX_COUNT = 1 << 24
_MAX_DIMS = 8


@dataclass(frozen=True)
class GGUFArray:
    """A metadata array that was stepped over rather than decoded (e.g. the tokenizer vocabulary)."""

    item_type: int
    length: int

    def __len__(self) -> int:
        return self.length


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a GGUF file: name, shape (GGUF order, fastest dim first), ggml type, offset."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        """Number of values in the tensor (product of its dims)."""
        return math.prod(self.shape)

    @property
    def type_name(self) -> str:
        """The ggml type as a name (``Q4_K``, ``F32``...)."""
        return TENSOR_TYPES.get(self.ggml_type, f"type{self.ggml_type}")


@dataclass
class GGUFHeader:
    """The parsed header of a GGUF file: version, metadata and tensor infos."""

    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)

    @property
    def n_params(self) -> int:
        """Total number of parameters: the sum over tensors of the product of their dims."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def architecture(self) -> str | None:
        """``general.architecture`` (``llama``, ``gemma3``...), if present."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def quantization(self) -> str | None:
        """The quantization name from ``general.file_type``, else the most common weight type."""
        ftype = self.metadata.get("general.file_type")
        if isinstance(ftype, int) and not isinstance(ftype, bool):
            return FILE_TYPES.get(ftype, f"ftype{ftype}")
        counts: dict[str, int] = {}
        for t in self.tensors:
            if len(t.shape) >= 2:  # weights, not norms/biases
                counts[t.type_name] = counts.get(t.type_name, 0) + t.n_elements
        return max(counts, key=counts.__getitem__) if counts else None

    def arch_value(self, key: str) -> Any:
        """Metadata ``<architecture>.<key>`` (e.g. ``context_length``), or None."""
        arch = self.architecture
        return self.metadata.get(f"{arch}.{key}") if arch else None


class _Reader:
    """Sequential little-endian reader over a buffer with bounds checks."""

    def __init__(self, buf: Any, path: Path, version: int = 3) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path
        self.size = len(buf)
        self.len_fmt = "<I" if version == 1 else "<Q"
        self.len_size = 4 if version == 1 else 8

    def truncated(self) -> ModelError:
        return ModelError(f"{self.path} is a truncated or corrupt GGUF file (header ends early); re-download or re-copy it")

    def take(self, fmt: str, size: int) -> Any:
        if self.pos + size > self.size:
            raise self.truncated()
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def count(self) -> int:
        return int(self.take(self.len_fmt, self.len_size))

    def skip(self, size: int) -> None:
        if size < 0 or self.pos + size > self.size:
            raise self.truncated()
        self.pos += size

    def string(self) -> str:
        n = self.count()
        if self.pos + n > self.size:
            raise self.truncated()
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.skip(self.count())

    def value(self, vtype: int) -> Any:
        if vtype in _SCALAR_FORMATS:
            return self.take(_SCALAR_FORMATS[vtype], _SCALAR_SIZES[vtype])
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            item_type = self.take("<I", 4)
            n = self.count()
            if n > ARRAY_DECODE_LIMIT:
                self.skip_array(item_type, n)
                return GGUFArray(item_type, n)
            return [self.value(item_type) for _ in range(n)]
        raise ModelError(f"{self.path} has an unknown GGUF metadata value type {vtype}; it may be corrupt or too new")

    def skip_array(self, item_type: int, n: int) -> None:
        if item_type in _SCALAR_SIZES:
            self.skip(_SCALAR_SIZES[item_type] * n)
        elif item_type == T_STRING:
            # strings are length-prefixed: step from prefix to prefix without decoding
            buf, pos, size, fmt, lsize = self.buf, self.pos, self.size, self.len_fmt, self.len_size
            unpack = struct.unpack_from
            for _ in range(n):
                if pos + lsize > size:
                    raise self.truncated()
                pos += lsize + unpack(fmt, buf, pos)[0]
            if pos > size:
                raise self.truncated()
            self.pos = pos
        else:
            for _ in range(n):
                self.value(item_type)


def read_gguf(path: str | Path) -> GGUFHeader:
    """Parse the header (metadata + tensor infos) of the GGUF file at ``path``; no weights are read.

    Raises :class:`ModelError` if the file is missing, not GGUF, or its header is corrupt.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
            if magic != GGUF_MAGIC:
                raise ModelError(f"{p} is not a GGUF file (it does not start with 'GGUF'); give a .gguf model file")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, p)
    except FileNotFoundError:
        raise ModelError(f"model file {p} does not exist; check the path") from None
    except IsADirectoryError:
        raise ModelError(f"{p} is a folder, not a GGUF file; give the .gguf file inside it") from None
    except PermissionError:
        raise ModelError(f"cannot read {p} (permission denied); fix its permissions") from None


def _parse(buf: Any, path: Path) -> GGUFHeader:
    rd = _Reader(buf, path)
    rd.pos = 4
    version = rd.take("<I", 4)
    if version not in (1, 2, 3):
        raise ModelError(f"{path} is GGUF version {version}, which lmread cannot read (1-3); convert it with a current llama.cpp")
    rd = _Reader(buf, path, version)
    rd.pos = 8
    n_tensors = rd.count()
    n_kv = rd.count()
    if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise ModelError(f"{path} is a corrupt GGUF file (implausible tensor/metadata counts); re-download it")
    header = GGUFHeader(path=path, version=version)
    for _ in range(n_kv):
        key = rd.string()
        vtype = rd.take("<I", 4)
        header.metadata[key] = rd.value(vtype)
    for _ in range(n_tensors):
        name = rd.string()
        n_dims = rd.take("<I", 4)
        if n_dims > _MAX_DIMS:
            raise ModelError(f"{path} is a corrupt GGUF file (tensor {name!r} has {n_dims} dims); re-download it")
        dims = tuple(rd.count() for _ in range(n_dims))
        ggml_type = rd.take("<I", 4)
        offset = rd.take("<Q", 8)
        header.tensors.append(TensorInfo(name, dims, ggml_type, offset))
    return header


def gguf_info(path: str | Path) -> dict[str, Any]:
    """A summary of a GGUF file read from its header.

    Keys: ``path``, ``format`` ("gguf"), ``gguf_version``, ``architecture``, ``name``
    (``general.name``), ``n_params``, ``n_tensors``, ``quantization``, ``file_type``,
    ``context_length``, ``vocab_size``, ``bos_token_id``, ``eos_token_id``, ``has_chat_template``.
    """
    h = read_gguf(path)
    md = h.metadata
    tokens = md.get("tokenizer.ggml.tokens")
    vocab = len(tokens) if isinstance(tokens, (list, GGUFArray)) else h.arch_value("vocab_size")
    ftype = md.get("general.file_type")

    def _int(value: Any) -> int | None:
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    name = md.get("general.name")
    return {
        "path": str(h.path),
        "format": "gguf",
        "gguf_version": h.version,
        "architecture": h.architecture,
        "name": name if isinstance(name, str) else None,
        "n_params": h.n_params,
        "n_tensors": len(h.tensors),
        "quantization": h.quantization,
        "file_type": _int(ftype),
        "context_length": _int(h.arch_value("context_length")),
        "vocab_size": _int(vocab),
        "bos_token_id": _int(md.get("tokenizer.ggml.bos_token_id")),
        "eos_token_id": _int(md.get("tokenizer.ggml.eos_token_id")),
        "has_chat_template": isinstance(md.get("tokenizer.chat_template"), str),
    }


# --------------------------------------------------------------------------------------------
# safetensors

#: the largest safetensors JSON header accepted (the format itself caps it at 100 MB)
SAFETENSORS_HEADER_LIMIT = 100_000_000


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file (tensor name -> dtype/shape/offsets; ``__metadata__``).

    Raises :class:`ModelError` if the file is missing or its header is not a valid safetensors header.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = p.stat().st_size
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise ModelError(f"{p} is not a safetensors file (too short); re-download it")
            (n,) = struct.unpack("<Q", raw_len)
            if n == 0 or n > SAFETENSORS_HEADER_LIMIT or n > size - 8:
                raise ModelError(f"{p} is not a safetensors file (bad header length {n}); re-download it")
            raw = fh.read(n)
    except FileNotFoundError:
        raise ModelError(f"model file {p} does not exist; check the path") from None
    except IsADirectoryError:
        raise ModelError(f"{p} is a folder, not a safetensors file") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"{p} is not a safetensors file (its header is not JSON); re-download it") from None
    if not isinstance(header, dict):
        raise ModelError(f"{p} is not a safetensors file (its header is not a JSON object); re-download it")
    return header


def safetensors_params(path: str | Path) -> int:
    """Number of parameters in one safetensors file: the sum of shape products (``__metadata__`` excluded)."""
    header = read_safetensors_header(path)
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ModelError(f"{path} has a bad safetensors header (tensor {name!r} has no valid shape); re-download it")
        total += math.prod(shape)
    return total


def safetensors_dtypes(path: str | Path) -> dict[str, int]:
    """Parameter count per dtype in one safetensors file (e.g. ``{"BF16": 134515008}``)."""
    counts: dict[str, int] = {}
    for name, entry in read_safetensors_header(path).items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        dtype = str(entry.get("dtype", "?"))
        counts[dtype] = counts.get(dtype, 0) + math.prod(entry.get("shape") or [])
    return counts
