"""The LLM engine's client: chat models for any OpenAI-compatible endpoint and the guarded call.

Every agent's ``llm`` engine goes through :meth:`LLM.structured`: structured output through
function calling, a timeout per request, at most ``1 + llm_max_retries`` HTTP attempts with
backoff that honours ``Retry-After`` on 429/5xx, one repair request when the output fails
validation, token accounting against a per-batch budget, and a process-wide cap on requests
in flight. It raises :class:`LLMError` (with a short reason that never quotes complaint text)
and the caller falls back to the ``rules`` engine for the items concerned.
"""

from __future__ import annotations

import email.utils
import random
import re
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import openai
import yaml
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langsmith import tracing_context
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tools.settings import Settings

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
Task = Literal["trace", "analysis", "remediation"]
TASKS: tuple[Task, ...] = ("trace", "analysis", "remediation")
# Waiting longer than this inside a batch is worse than falling back to rules.
MAX_WAIT_SECONDS = 30.0
BACKOFF_BASE = 0.5
# Roughly two characters per token for Chinese text; used only to reserve budget before a call.
CHARS_PER_TOKEN = 2
_PROMPT_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.md$")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.M)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R")


class LLMError(Exception):
    """The model could not give a usable answer; ``reason`` is short and safe to record."""

    kind = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetSpent(LLMError):
    kind = "budget"


class Unavailable(LLMError):
    kind = "unavailable"


class InvalidOutput(LLMError):
    kind = "invalid_output"


# ── prompts ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Prompt:
    """A versioned prompt file: ``prompts/<name>.v<version>.md`` with ``[system]``/``[user]``."""

    name: str
    version: int
    system: str
    user: str

    @property
    def ref(self) -> str:
        return f"{self.name}.v{self.version}"

    def messages(self, **values: str) -> list[BaseMessage]:
        """Fill the ``$placeholders``; a missing value is an error, not an empty string."""
        return [
            SystemMessage(string.Template(self.system).substitute(values)),
            HumanMessage(string.Template(self.user).substitute(values)),
        ]


def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    """The highest version of prompt ``name`` in ``directory``."""
    found = []
    for path in directory.glob(f"{name}.v*.md"):
        m = _PROMPT_FILE.match(path.name)
        if m and m["name"] == name:
            found.append((int(m["version"]), path))
    if not found:
        raise FileNotFoundError(f"no prompt file {name}.v<N>.md in {directory}")
    version, path = max(found)
    text = path.read_text(encoding="utf-8")
    meta: dict[str, Any] = {}
    if text.startswith("---\n"):
        head, _, text = text[4:].partition("\n---\n")
        meta = yaml.safe_load(head) or {}
    if int(meta.get("version", version)) != version:
        raise ValueError(f"{path.name}: front matter says version {meta.get('version')}")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    return Prompt(name, version, sections.get("system", ""), sections.get("user", ""))


def wrap_complaint(key: str, text: str, fields: Iterable[tuple[str, str | None]] = ()) -> str:
    """Untrusted text inside ``<complaint id="...">`` delimiters it cannot close itself."""
    lines = [f"{k}：{neutralise(v)}" for k, v in fields if v]
    body = "\n".join([*lines, neutralise(text)])
    return f'<complaint id="{key}">\n{body}\n</complaint>'


def neutralise(text: str) -> str:
    """Disarm anything in untrusted text that looks like one of our delimiters."""
    return re.sub(r"<(/?)\s*(complaint|source|problem)", r"＜\1\2", text, flags=re.I)


# ── accounting ────────────────────────────────────────────────────────────────────────────


@dataclass
class Ledger:
    """Tokens spent by one batch, shared by its parallel tasks; the budget is checked here."""

    budget: int
    spent: int = 0
    reserved: int = 0
    exhausted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reserve(self, estimate: int) -> bool:
        """Hold ``estimate`` tokens for a call about to start; False once the budget is spent."""
        with self.lock:
            if self.budget and self.spent + self.reserved + estimate > self.budget:
                self.exhausted = True
                return False
            self.reserved += estimate
            return True

    def settle(self, estimate: int, actual: int) -> None:
        with self.lock:
            self.reserved -= estimate
            self.spent += actual


@dataclass
class Meter:
    """One graph task's view: the batch ledger plus the counts this task adds to ``run.json``."""

    ledger: Ledger
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def usage(self) -> dict[str, float]:
        """Counts for the graph's ``llm_usage`` reducer."""
        with self.lock:
            return {k: float(v) for k, v in self.counts.items() if v}


# ── the client ────────────────────────────────────────────────────────────────────────────


def _chars(messages: Sequence[BaseMessage]) -> int:
    return sum(len(m.content) if isinstance(m.content, str) else len(str(m.content)) for m in messages)


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(error: BaseException | None, raw: Any) -> str:
    """Why a reply failed validation: field paths and messages, never the values."""
    if isinstance(error, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]]
        return "schema validation failed: " + "; ".join(parts)
    if error is not None:
        return f"output could not be parsed ({type(error).__name__})"
    invalid = getattr(raw, "invalid_tool_calls", None)
    if invalid:
        return "tool-call arguments were not valid JSON"
    return "the reply did not call the tool"


def _raw_arguments(raw: Any) -> str:
    calls = list(getattr(raw, "tool_calls", []) or []) + list(getattr(raw, "invalid_tool_calls", []) or [])
    if not calls:
        return str(getattr(raw, "content", "") or "")
    args = calls[0].get("args")
    return args if isinstance(args, str) else str(args)


class LLM:
    """Chat models per task and the guarded structured call; one per process, shared by batches."""

    def __init__(
        self,
        settings: Settings,
        models: dict[Task, BaseChatModel] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.batch_size = settings.llm_batch_size
        self.concurrency = settings.llm_concurrency
        self.max_attempts = 1 + settings.llm_max_retries
        self.budget = settings.llm_token_budget
        self.model_names = {t: settings.llm_model_for(t) for t in TASKS}
        self.models = models or _chat_models(settings, self.model_names)
        self.prompts = {
            name: load_prompt(name) for name in ("trace_attribute", "name_problems", "remediate", "repair")
        }
        self._sleep = sleep
        self._gate = threading.BoundedSemaphore(self.concurrency)
        self._ledgers: dict[str, Ledger] = {}
        self._runnables: dict[tuple[Task, type[BaseModel]], Any] = {}
        self._lock = threading.Lock()

    # Ledgers are keyed by batch (the graph's thread id) because parallel tasks share a budget.
    def ledger(self, batch: str | None) -> Ledger:
        with self._lock:
            return self._ledgers.setdefault(batch or "-", Ledger(self.budget))

    def close(self, batch: str | None) -> Ledger | None:
        """Forget a finished batch's ledger, returning it."""
        with self._lock:
            return self._ledgers.pop(batch or "-", None)

    def meter(self, batch: str | None) -> Meter:
        return Meter(self.ledger(batch))

    def versions(self) -> dict[str, str]:
        """What goes into a batch's identity and ``run.json``: models and prompt versions."""
        return {
            "engine": "llm",
            "llm_models": ",".join(f"{t}={m}" for t, m in self.model_names.items()),
            "prompts": ",".join(p.ref for p in self.prompts.values()),
        }

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run ``fn`` over ``items`` with bounded concurrency, keeping order."""
        if len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def structured(self, task: Task, schema: type[M], messages: list[BaseMessage], meter: Meter) -> M:
        """Call the task's model for ``schema``; one repair on invalid output; raises LLMError."""
        runnable = self._runnable(task, schema)
        meter.add(f"calls.{task}")
        out = self._request(task, runnable, messages, meter)
        if out["parsed"] is not None:
            return out["parsed"]
        reason = _describe(out.get("parsing_error"), out.get("raw"))
        meter.add(f"repairs.{task}")
        repair = self.prompts["repair"].messages(error=reason, tool=schema.__name__)[1]
        previous = AIMessage(content=_raw_arguments(out.get("raw"))[:6000])
        out = self._request(task, runnable, [*messages, previous, repair], meter)
        if out["parsed"] is not None:
            return out["parsed"]
        again = _describe(out.get("parsing_error"), out.get("raw"))
        raise InvalidOutput(f"invalid output after one repair: {again}")

    def _runnable(self, task: Task, schema: type[BaseModel]) -> Any:
        with self._lock:
            key = (task, schema)
            if key not in self._runnables:
                # include_raw: parse failures come back as values (for the repair), not exceptions.
                self._runnables[key] = self.models[task].with_structured_output(
                    schema, method="function_calling", include_raw=True
                )
            return self._runnables[key]

    def _request(self, task: Task, runnable: Any, messages: list[BaseMessage], meter: Meter) -> Any:
        chars = _chars(messages)
        estimate = chars // CHARS_PER_TOKEN + 1
        if not meter.ledger.reserve(estimate):
            meter.add("budget_refusals")
            raise BudgetSpent("token budget for this batch is spent")
        actual = 0
        try:
            out = self._with_retries(task, runnable, messages, meter, chars)
            usage = getattr(out.get("raw"), "usage_metadata", None) or {}
            prompt = int(usage.get("input_tokens", 0))
            completion = int(usage.get("output_tokens", 0))
            if not usage:
                meter.add("tokens.estimated_calls")
                prompt = estimate
                completion = len(_raw_arguments(out.get("raw"))) // CHARS_PER_TOKEN
            actual = prompt + completion
            meter.add("tokens.prompt", prompt)
            meter.add("tokens.completion", completion)
            meter.add("tokens.total", actual)
            # Per task too: the cascade's saving is read from what tracing calls cost.
            meter.add(f"task_tokens.{task}", actual)
            return out
        finally:
            meter.ledger.settle(estimate, actual)

    def _with_retries(
        self, task: Task, runnable: Any, messages: list[BaseMessage], meter: Meter, chars: int
    ) -> Any:
        for attempt in range(1, self.max_attempts + 1):
            meter.add(f"requests.{task}")
            meter.add(f"prompt_chars.{task}", chars)
            try:
                # Complaint text goes to the configured endpoint only, never to a tracing
                # service that an environment variable happens to switch on.
                with self._gate, tracing_context(enabled=False):
                    return runnable.invoke(messages)
            except openai.APIStatusError as exc:
                status = exc.status_code
                if not (status in (408, 409, 429) or status >= 500):
                    raise Unavailable(f"HTTP {status} from the model endpoint") from None
                if attempt == self.max_attempts:
                    raise Unavailable(f"HTTP {status} after {attempt} attempts") from None
                wait = retry_after(exc.response.headers)
            except openai.APIConnectionError as exc:
                what = "timeout" if isinstance(exc, openai.APITimeoutError) else "connection error"
                if attempt == self.max_attempts:
                    raise Unavailable(f"{what} after {attempt} attempts") from None
                wait = None
            if wait is None:
                wait = BACKOFF_BASE * 2 ** (attempt - 1) + random.uniform(0, BACKOFF_BASE / 2)
            meter.add("retries")
            self._sleep(min(wait, MAX_WAIT_SECONDS))
        raise AssertionError("unreachable")  # pragma: no cover


def _chat_models(settings: Settings, names: dict[Task, str]) -> dict[Task, BaseChatModel]:
    from langchain_openai import ChatOpenAI

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    built: dict[str, BaseChatModel] = {}
    for name in set(names.values()):
        built[name] = ChatOpenAI(
            model=name,
            base_url=settings.llm_base_url,
            # Local servers (vLLM, Ollama) accept any key; the client insists on one.
            api_key=key or "not-needed",
            timeout=settings.llm_timeout,
            max_retries=0,  # retries are ours, so attempts are counted and Retry-After is honoured
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_output_tokens,
            use_responses_api=False,  # OpenAI-compatible servers speak chat completions
        )
    return {t: built[n] for t, n in names.items()}


def make_llm(settings: Settings) -> LLM | None:
    """The LLM client when the configured engine resolves to ``llm``, else None."""
    if settings.resolved_engine() != "llm":
        return None
    return LLM(settings)
