"""A minimal OpenAI-compatible completions server in front of any infscale generator (stdlib `http.server`).

Serves ``GET /v1/models``, ``POST /v1/completions`` (``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop``,
``logprobs``, vLLM's ``stop_reason`` and ``include_stop_str_in_output``) and ``POST /tokenize``. It lets the project's
own models sit behind the same `OpenAIServerGenerator` route as vLLM/SGLang, and gives the client a real loopback
server in tests. One request is generated at a time (a lock around the generator).
Run: ``python -m infscale.tts.backends.serve --port 8000`` (the bundled arithmetic policy).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infscale.tts.core.generation import Generator, SamplingParams


def make_server(generator: Generator, host: str = "127.0.0.1", port: int = 0,
                model_name: str = "infscale") -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except json.JSONDecodeError:
                self._send(400, {"error": "body is not JSON"})
                return
            if self.path.rstrip("/") == "/tokenize":
                self._send(200, {"count": generator.count_tokens(req.get("prompt", ""))})
                return
            if self.path.rstrip("/") != "/v1/completions":
                self._send(404, {"error": f"no route {self.path}"})
                return
            try:
                stop = req.get("stop") or ()
                params = SamplingParams(temperature=float(req.get("temperature", 1.0)),
                                        top_p=float(req.get("top_p", 1.0)), max_tokens=int(req.get("max_tokens", 16)),
                                        stop=tuple([stop] if isinstance(stop, str) else stop),
                                        logprobs=req.get("logprobs") is not None, seed=req.get("seed"))
                n = int(req.get("n", 1))
            except (TypeError, ValueError) as exc:
                self._send(400, {"error": str(exc)})
                return
            with lock:
                comps = generator.generate([req["prompt"]], [n], params)[0]
            keep_stop = bool(req.get("include_stop_str_in_output", False))
            choices = []
            for i, c in enumerate(comps):
                text, stop_reason = c.text, None
                if c.finish_reason == "stop":
                    stop_reason = next((s for s in params.stop if text.endswith(s)), None)
                    if stop_reason and not keep_stop:
                        text = text[: -len(stop_reason)]
                n_tok = c.completion_tokens - (1 if c.finish_reason == "eos" else 0)
                per_tok = (c.logprob or 0.0) / max(c.completion_tokens, 1)
                choices.append({"index": i, "text": text, "stop_reason": stop_reason,
                                "finish_reason": "length" if c.finish_reason == "length" else "stop",
                                "logprobs": {"tokens": [""] * n_tok, "token_logprobs": [per_tok] * n_tok}})
            usage = {"prompt_tokens": comps[0].prompt_tokens if comps else 0,
                     "completion_tokens": sum(c.completion_tokens for c in comps)}
            self._send(200, {"object": "text_completion", "model": model_name, "choices": choices, "usage": usage})

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    from infscale.tts.backends.torch import TorchGenerator

    server = make_server(TorchGenerator(checkpoint=args.checkpoint), args.host, args.port)
    print(f"serving on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
