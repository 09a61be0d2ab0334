"""`obert serve` in a subprocess on localhost: started, queried and stopped from Python (notebook 06, the load
test, tests). The server runs in its own interpreter, so clients here do not share its GIL.

    server = ServerProcess({"tnews": "runs/ft/tnews/best", ...}).start()   # returns once GET /health answers
    server.predict(["这家店的菜很好吃"])                                      # POST /predict -> every task's answer
    server.stop()                                                            # SIGTERM, then SIGKILL after 30 s
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

STOP_GRACE_S = 30.0  # uvicorn drains in-flight requests on SIGTERM; after this it is killed


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`obert serve --task NAME=DIR ...` on 127.0.0.1 (a free port unless given); `options`: more of its flags,
    e.g. ["--runtime", "max_batch=8"]; separate=True serves T full models (the baseline)."""

    def __init__(self, dirs: Mapping[str, str | Path], separate: bool = False, port: int | None = None,
                 options: Sequence[str] = (), timeout: float = 120.0):  # fmt: skip
        self.dirs = {str(k): str(v) for k, v in dirs.items()}
        self.separate = separate
        self.port = port
        self.options = list(options)
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server has not been started: call start()")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ServerProcess:
        """Start the server and wait until GET /health answers 200; raise with its stderr if it exits first or
        does not answer within `timeout` seconds."""
        import httpx

        if self.running:
            return self
        self.port = self.port or free_port()
        argv = [sys.executable, "-m", "obert_lib.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += [x for name, folder in self.dirs.items() for x in ("--task", f"{name}={folder}")]
        argv += ["--set", f"separate={str(self.separate).lower()}", *self.options]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})  # fmt: skip
        end = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                message = self.proc.stderr.read().strip()[-2000:]
                self.stop()
                raise RuntimeError(f"obert serve exited with {self.proc.returncode}: {message}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"obert serve did not answer on {self.url} within {self.timeout:.0f} s")
            time.sleep(0.25)

    def get(self, path: str) -> dict[str, Any]:
        """GET `path` (e.g. "/info") as JSON."""
        import httpx

        return httpx.get(self.url + path, timeout=30.0, trust_env=False).json()

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> dict[str, Any]:
        """POST /predict {"texts": [...]} (and "tasks" when given); the JSON answer, or RuntimeError with the
        server's message on a 4xx."""
        import httpx

        body: dict[str, Any] = {"texts": list(texts)}
        if tasks is not None:
            body["tasks"] = list(tasks)
        response = httpx.post(self.url + "/predict", json=body, timeout=60.0, trust_env=False)
        if response.status_code != 200:
            raise RuntimeError(f"POST /predict answered {response.status_code}: {response.text}")
        return response.json()

    def stop(self) -> dict[str, Any]:
        """SIGTERM the server (SIGKILL after STOP_GRACE_S): {"url", "returncode", "graceful"}. uvicorn shuts down
        (in-flight requests answered), then re-raises the signal, so a graceful stop exits with -15 (SIGTERM)."""
        if self.proc is None:
            return {"url": None, "returncode": None, "graceful": True}
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()
        code = self.proc.returncode
        return {"url": self.url, "returncode": code, "graceful": code in (0, -signal.SIGTERM)}

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def serve_process(dirs: Mapping[str, str | Path], separate: bool = False, port: int | None = None,
                  options: Sequence[str] = (), timeout: float = 120.0) -> Iterator[str]:  # fmt: skip
    """ServerProcess as a context manager that yields the base URL."""
    with ServerProcess(dirs, separate, port, options, timeout) as server:
        yield server.url
