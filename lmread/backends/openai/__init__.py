"""The ``openai`` backend: OpenAI-compatible servers (vLLM, llama-server, llama-cpp-python's server).

One module per idea, one class per server protocol over shared plumbing:

* :mod:`.http` - the HTTP client (httpx, API-key scrubbing, bounded retries before the first
  answer, the server-sent-event iterator, error mapping); chat requests use it too;
* :mod:`.tokens` - token bytes, log-probability cleaning, rank and chunk building;
* :mod:`.completions` - OpenAI's ``/v1/completions`` protocol; :mod:`.native` - llama-server's
  native ``/completion`` protocol (one interface: :class:`.stream.ServerProtocol`);
* :mod:`.discovery` - what a server says about itself (``/v1/models``, ``/props``);
* :mod:`.report` - what a stream leaves in the sample's ``server`` object;
* :mod:`.stream` - the one stream loop; :mod:`.scorer` - teacher-forced scoring with ``echo``;
* :mod:`.backend` - :class:`OpenAIBackend`, composing them.

Every generated token becomes one :class:`~lmread.backends.base.TokenChunk`.

How the fields are filled:

* ``id`` is the token id where the server gives one (shape b), else ``-1``; ``top_ids`` likewise
  (``-1`` for each alternative whose id is unknown, so the three ``top_*`` lists stay aligned).
* ``piece`` is the raw bytes: the ``bytes`` list when present, else the token string in UTF-8.
  A token string ``"bytes:\\xe6\\x97"`` (OpenAI's and vLLM's spelling of a partial UTF-8
  character) is turned back into those bytes.  When a chunk holds exactly one token whose bytes
  are not given exactly and the chunk's ``text`` differs from the token string (a partial
  character sent as U+FFFD, or the last token cut at a stop string), the server's ``text`` is
  taken as the piece, so the pieces always add up to exactly the text the server reported.
  llama-cpp-python's server drops the bytes of partial UTF-8 characters from both its token
  strings and its text; such bytes cannot be recovered by any client.
* ``logprob`` is the server's log-probability of the chosen token; ``top_*`` are the server's
  best ``options.top_logprobs`` alternatives, best first (an entry the server appends for the
  chosen token beyond the top k is dropped).
* ``rank`` is ``1 +`` the number of listed alternatives more likely than the chosen token when
  the chosen token is among the listed top k or some listed alternative is less likely than it;
  otherwise (chosen token outside the top k) it is ``None``: its rank is above k but unknown.
* ``entropy`` is ``None``: a server does not report the full distribution.

Servers: llama-cpp-python's server cuts a running stream short whenever another request
arrives unless it is started with ``--interrupt_requests false`` (needed for ``concurrency`` > 1);
it serves one stream at a time and computes log-probabilities in Python (slow with big
vocabularies).  ``top_k=0``, ``min_p=0`` and ``repetition_penalty=1`` are always sent, because the
servers' own defaults are not "off"; ``repetition_penalty`` is sent under both of its names
(``repeat_penalty`` for llama.cpp, ``repetition_penalty`` for vLLM).

The API key is read from the environment variable named by ``api_key_env`` at request time and
sent as ``Authorization: Bearer``; it never appears in :meth:`OpenAIBackend.describe`, in error
messages or in samples.

Scoring (:meth:`OpenAIBackend.score`) uses ``echo: true`` with ``max_tokens: 1``.  Servers that
do not return prompt log-probabilities (llama-server), or whose echoed log-probabilities are one
token off (llama-cpp-python with models that add no BOS token), raise
``BackendError("scoring not supported by this server ...")``.
"""

from lmread.backends.openai.backend import PROTOCOLS, OpenAIBackend
from lmread.backends.openai.completions import finish_of, merged_pieces, parse_choice
from lmread.backends.openai.discovery import SERVER_KINDS, VLLM_MAX_LOGPROBS, server_identity, server_kind
from lmread.backends.openai.http import HttpClient, display_url, normalize_base_url, server_message
from lmread.backends.openai.report import StreamReport
from lmread.backends.openai.tokens import compute_rank, token_bytes

__all__ = [
    "PROTOCOLS", "SERVER_KINDS", "VLLM_MAX_LOGPROBS", "HttpClient", "OpenAIBackend", "StreamReport", "compute_rank",
    "display_url", "finish_of", "merged_pieces", "normalize_base_url", "parse_choice", "server_identity",
    "server_kind", "server_message", "token_bytes",
]
