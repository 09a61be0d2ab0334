"""JupyterLab on localhost for the browser tests: a free port, a random token, settings kept in a temp folder."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")  # Debian's and Ubuntu's system browser


def chromium() -> str | None:
    """The system Chromium (never a downloaded one), or None."""
    found = next((p for p in CHROMIUM_PATHS if os.access(p, os.X_OK)), None)
    return found or shutil.which("chromium")


def missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if chromium() is None:
        how = "`apt-get install chromium fonts-noto-cjk` (.ci/run does it)" if shutil.which("apt-get") else "no apt-get"
        return f"no system Chromium at {' or '.join(CHROMIUM_PATHS)}: {how}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (pip) is not installed: `make install`"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """`jupyter lab` serving `root` on 127.0.0.1 with a token; the app is exposed as window.jupyterapp."""

    def __init__(self, root: Path, settings: Path, log: Path, theme: str = "JupyterLab Light"):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        for plugin, values in {
            "apputils-extension/themes": {"theme": theme},
            "apputils-extension/notification": {"fetchNews": "false"},  # no "get Jupyter news?" toast
            "notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM: stable scrolling
        }.items():
            path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {
            **os.environ,
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(settings / "runtime"),
        }
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells and switch themes by command
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",  # nothing leaves the machine
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",  # no PyPI search for extensions
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        ]
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=root)

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; see {self._log.name}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f}s; see {self._log.name}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
