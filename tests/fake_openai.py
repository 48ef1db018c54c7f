"""A scripted OpenAI-compatible server on loopback for tests of the real client path.

It serves ``POST /v1/chat/completions``, logs every request, and answers each one either with
the next scripted reply (``push``) or, when the script is empty, with its ``responder``. The
default responder plays a cooperative model: it reads the tool the client asked for and the
``<complaint>``/``<source>``/``<problem>`` elements in the prompt and calls the tool with valid
arguments. Tests make it misbehave on demand (429 with Retry-After, 500, malformed JSON,
schema-invalid output, unknown departments, invented citations).
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLAINT = re.compile(r'<complaint id="([^"]+)">\n?(.*?)</complaint>', re.S)
SOURCE = re.compile(r'<source id="([^"]+)"')
PROBLEM = re.compile(r'<problem id="([^"]+)"')

# A cooperative model's reading of a complaint: (cue, label, department).
READINGS = [
    ("盗刷", "环-外部环境", "card_center"),
    ("闪退", "机-面客系统", "digital_banking"),
    ("登录", "机-面客系统", "digital_banking"),
    ("扣款", "机-交易处理", "it_operations"),
    ("转人工", "环-智能服务", "remote_banking"),
    ("态度", "人-服务态度", "remote_banking"),
    ("年费", "法-制度收费", "card_center"),
]
DEFAULT_READING = ("物-业务流程", "remote_banking")


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def completion(tool: str, arguments: dict[str, Any] | str, prompt_tokens: int = 100) -> dict[str, Any]:
    """A chat completion whose assistant message calls ``tool`` with ``arguments``."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": tool, "arguments": args},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max(1, len(args) // 2),
            "total_tokens": prompt_tokens + max(1, len(args) // 2),
        },
    }


def tool_name(request: dict[str, Any]) -> str:
    """The function the client forced with ``tool_choice``."""
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        return str(choice["function"]["name"])
    return str(request["tools"][0]["function"]["name"])


def prompt_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.get("messages", []))


def last_user_text(request: dict[str, Any]) -> str:
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    # A repair request appends a second user message; the complaints are in the first one.
    return str(users[0].get("content") or "") if users else ""


def read_complaint(text: str) -> tuple[str, str, str]:
    """(label, department, evidence) as a cooperative model would answer."""
    for cue, label, dept in READINGS:
        if cue in text:
            return label, dept, cue
    words = text.strip()[:4]
    return DEFAULT_READING[0], DEFAULT_READING[1], words


def trace_arguments(request: dict[str, Any]) -> dict[str, Any]:
    items = []
    for cid, body in COMPLAINT.findall(last_user_text(request)):
        label, dept, quote = read_complaint(body)
        items.append(
            {
                "id": cid,
                "is_complaint": True,
                "label": label,
                "secondary": [],
                "polarity": "negative",
                "emotion": "anger",
                "department_id": dept,
                "cause_evidence": [quote],
                "owner_evidence": [quote],
                "confidence": 0.8,
            }
        )
    return {"items": items}


def naming_arguments(request: dict[str, Any]) -> dict[str, Any]:
    ids = PROBLEM.findall(last_user_text(request))
    return {"problems": [{"id": i, "name": f"模型命名{i}", "summary": f"{i} 的共性问题摘要"} for i in ids]}


def proposal_arguments(request: dict[str, Any]) -> dict[str, Any]:
    ids = SOURCE.findall(last_user_text(request))
    first = ids[:1]
    return {
        "goals": ["一个月内让客户不再因同一问题重复来电"],
        "measures": [
            {"text": "统一一线答复口径并培训坐席", "term": "short", "sources": first},
            {"text": "修复根因并建立监控告警", "term": "long", "sources": ids[1:2]},
        ],
    }


def cooperative(request: dict[str, Any]) -> Reply:
    """Answer any of the engine's tools with valid arguments."""
    name = tool_name(request)
    chars = len(prompt_text(request))
    if name == "RecordTraces":
        args = trace_arguments(request)
    elif name == "NameProblems":
        args = naming_arguments(request)
    elif name == "DraftProposal":
        args = proposal_arguments(request)
    else:  # pragma: no cover - a new tool the fake does not know yet
        return Reply(400, {"error": {"message": f"unknown tool {name}"}})
    return Reply(200, completion(name, args, prompt_tokens=max(1, chars // 2)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out hangs up before the (deliberately slow) reply: expected here.
        return


class FakeOpenAI:
    """The server: start it, point the engine at ``base_url``, read ``requests`` afterwards."""

    def __init__(self, responder: Callable[[dict[str, Any]], Reply] = cooperative) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.other: list[str] = []  # paths of any request that was not a chat completion
        self.script: deque[Reply | Callable[[dict[str, Any]], Reply]] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    with fake._lock:
                        fake.other.append(self.path)
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = json.loads(raw or b"{}")
                with fake._lock:
                    fake.requests.append({"path": self.path, "body": request})
                    step = fake.script.popleft() if fake.script else fake.responder
                reply = step(request) if callable(step) else step
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body or {})
                data = body.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def push(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        """Queue replies for the next requests, in order, before the responder takes over."""
        with self._lock:
            self.script.extend(replies)

    def calls(self, tool: str) -> list[dict[str, Any]]:
        """Logged request bodies that asked for ``tool``."""
        return [r["body"] for r in self.requests if r["body"].get("tools") and tool_name(r["body"]) == tool]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
