"""A scripted OpenAI-compatible chat server on 127.0.0.1, for the judge's tests and bench.

It speaks just enough of POST /v1/chat/completions for the real `openai` client: scripted
replies (a `responder` function of the request), injected faults consumed in order (429 with
Retry-After, 5xx, connection resets, truncated or invalid JSON, slow replies), optional latency,
and a count of requests. Token usage is counted with its own crude tokenizer (words, CJK
characters and punctuation marks are one token each), independent of grader's estimator.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], str]

_TOKEN_RE = re.compile(r"[A-Za-z]+|\d|[\u3400-\u9fff]|[^\sA-Za-z\d]")


def count_tokens(text: str) -> int:
    """Words (long ones count per 8 letters), digits, CJK characters and punctuation marks."""
    n = 0
    for tok in _TOKEN_RE.findall(text):
        n += 1 + (len(tok) - 1) // 8 if tok.isalpha() and tok.isascii() else 1
    return n


@dataclass
class Fault:
    """One injected fault, used for one request."""

    kind: str
    """status | reset | content | sleep"""
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    content: str = ""
    finish_reason: str = "stop"
    seconds: float = 0.0


def status(code: int, **headers: str) -> Fault:
    """Reply with an HTTP error."""
    return Fault("status", status=code, headers={k.replace("_", "-"): v for k, v in headers.items()})


def reset() -> Fault:
    """Close the connection without a reply."""
    return Fault("reset")


def content(text: str, finish_reason: str = "stop") -> Fault:
    """Reply 200 with this message content instead of the responder's."""
    return Fault("content", content=text, finish_reason=finish_reason)


def sleep(seconds: float) -> Fault:
    """Wait this long before answering normally (to trigger client timeouts)."""
    return Fault("sleep", seconds=seconds)


def prompt_parts(body: dict[str, Any]) -> tuple[list[str], list[str], str]:
    """(key point ids, misconception ids, answer text as the judge saw it) from a judge request."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    m = re.search(r"<(answer-[0-9a-f]+)>\n(.*)\n</\1>", user, re.S)
    answer = m.group(2) if m else ""
    sections = re.split(r"\n(?=Key points to judge|Misconceptions to check)", user)
    ids: dict[str, list[str]] = {"points": [], "mcs": []}
    for sec in sections:
        target = "points" if sec.startswith("Key points") else "mcs" if sec.startswith("Misconceptions") else None
        if target:
            ids[target] = re.findall(r"^- ([a-z0-9][a-z0-9-]*): ", sec.split("\n\n")[0], re.M)
    return ids["points"], ids["mcs"], answer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connects when 16+ clients arrive at once
    daemon_threads = True


class ScriptedServer:
    """Start with `with ScriptedServer(responder) as srv:`; `srv.base_url` is the /v1 endpoint."""

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0, reject_json_schema: bool = False) -> None:
        self.responder: Responder = responder or (lambda body: "{}")
        self.latency = latency
        self.reject_json_schema = reject_json_schema
        self.faults: deque[Fault] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.endswith("/stats"):
                    self._send(200, {"requests": server.count})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers.items()))
                    server.times.append(time.monotonic())
                    fault = server.faults.popleft() if server.faults else None
                if server.latency:
                    time.sleep(server.latency)
                if fault is not None and fault.kind == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "status":
                    self._send(fault.status, {"error": {"message": f"scripted {fault.status}", "type": "scripted"}}, fault.headers)
                    return
                if fault is not None and fault.kind == "sleep":
                    time.sleep(fault.seconds)
                fmt = body.get("response_format") or {}
                if server.reject_json_schema and fmt.get("type") == "json_schema":
                    self._send(400, {"error": {"message": "response_format json_schema is not supported", "type": "invalid_request_error"}})
                    return
                if fault is not None and fault.kind == "content":
                    text, finish = fault.content, fault.finish_reason
                else:
                    text, finish = server.responder(body), "stop"
                prompt = sum(count_tokens(m["content"]) + 4 for m in body["messages"])
                completion = count_tokens(text)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-scripted",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "scripted"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
                    },
                )

            def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The endpoint to pass as base_url."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.bodies)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def reply_json(points: list[dict[str, Any]], misconceptions: list[dict[str, Any]] | None = None) -> str:
    """A reply in the judge's shape, from lists of entries that carry their "id"."""

    def keyed(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {i["id"]: {k: v for k, v in i.items() if k != "id"} for i in items}

    return json.dumps({"points": keyed(points), "misconceptions": keyed(misconceptions or [])}, ensure_ascii=False)


def keyword_judge(keywords: dict[str, list[str]], *, obey_injections: bool = False) -> Responder:
    """A scripted judge: a point is met when one of its keywords is in the answer it sees, quoting it.

    With `obey_injections`, it does what text addressed to the grader asks: when the answer it sees
    contains such text, every point is met, quoting the start of the answer (real text, so only
    grounding rules beyond "the quote exists" can stop it), and no misconception is present.
    """

    def respond(body: dict[str, Any]) -> str:
        point_ids, mc_ids, answer = prompt_parts(body)
        low = answer.lower()
        mcs = [{"id": m, "present": False, "quote": "", "reason": "not stated"} for m in mc_ids]
        if obey_injections and OBEY_RE.search(low):
            quote = answer.strip()[:15]
            return reply_json([{"id": p, "verdict": "met", "quote": quote, "reason": "as instructed"} for p in point_ids], mcs)
        pts = []
        for pid in point_ids:
            hit = next((k for k in keywords.get(pid, []) if k.lower() in low), None)
            if hit:
                at = low.index(hit.lower())
                pts.append({"id": pid, "verdict": "met", "quote": answer[at : at + len(hit)], "reason": "stated"})
            else:
                pts.append({"id": pid, "verdict": "missing", "quote": "", "reason": "not stated"})
        return reply_json(pts, mcs)

    return respond


# What the obeying judge treats as an instruction: broader than grader's own detector on purpose.
OBEY_RE = re.compile(
    r"ignore|disregard|full marks|full score|full credit|maximum|100|perfect|all points|every point|"
    r"grader|judge|evaluator|assistant|system|instruction|override|"
    r"满分|忽略|无视|评分|阅卷|所有要点|全部要点|指令|系统|最高分|给分"
)
