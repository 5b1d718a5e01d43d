"""A fake OpenAI-compatible chat-completions server on a local port, for tests.

It speaks real HTTP: ``POST /v1/chat/completions`` with a bearer key, a JSON body with
``model`` and ``messages``, and answers with the API's response shape
(``{"id", "object": "chat.completion", "choices": [{"message": {"role", "content"}}], ...}``).

What the assistant "says" comes from ``reply`` (a function of the request body returning the
content string); ``mode`` makes it misbehave: ``"fail"`` (HTTP 500), ``"timeout"`` (answers
after ``delay`` seconds), ``"garbage"`` (content that is not JSON), ``"wrong_shape"`` (JSON
without the fields asked for). Every request body is kept in ``requests``.

    with FakeLlm(api_key="k") as fake:
        settings.LLM_BASE_URL = fake.base_url
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = Callable[[dict[str, Any]], str]


def default_reply(body: dict[str, Any]) -> str:
    """A valid analysis: the summary names the first transcript line; 'I will' lines are items."""
    user = body["messages"][-1]["content"]
    lines = [line for line in user.splitlines() if line.startswith("[")]
    items = []
    for line in lines:
        seconds, _, rest = line[1:].partition("] ")
        speaker, _, text = rest.partition(": ")
        if "I will" in text:
            items.append({"text": text, "owner": speaker, "due": None, "start": int(seconds)})
    summary = f"The meeting covered {len(lines)} lines." if lines else "Combined summary."
    return json.dumps({"summary": summary, "topics": ["fake topic"], "action_items": items})


class FakeLlm:
    def __init__(self, *, api_key: str = "test-llm-key", reply: Reply = default_reply) -> None:
        self.api_key = api_key
        self.reply = reply
        self.mode = "ok"
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "Not found", "type": "invalid_request"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, {"error": {"message": "Bad key", "type": "invalid_api_key"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                fake.requests.append(body)
                if not body.get("model") or not isinstance(body.get("messages"), list):
                    self._send(400, {"error": {"message": "model and messages required"}})
                    return
                if fake.mode == "fail":
                    self._send(500, {"error": {"message": "The server had an error"}})
                    return
                if fake.mode == "timeout":
                    time.sleep(fake.delay)
                content = {
                    "garbage": lambda _: "Sure! Here is the summary you asked for :)",
                    "wrong_shape": lambda _: json.dumps({"answer": 42}),
                }.get(fake.mode, fake.reply)(body)
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
