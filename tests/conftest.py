"""Shared fixtures: tiny pipelines built from configs, pools over them, the app on a free port."""

from __future__ import annotations

import os

# Offline, quiet, no telemetry: set before any library import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("GENIMG_PRELOAD", "0")
# The database (arena, previews) of in-process apps and tasks goes to a temporary folder, never ./data.
os.environ.setdefault("GENIMG_DATA_DIR", __import__("tempfile").mkdtemp(prefix="genimg-test-data-"))
# trackio fixes its folder for the whole process when first imported: every run a test trains goes there.
os.environ.setdefault("TRACKIO_DIR", os.path.join(os.environ["GENIMG_DATA_DIR"], "trackio"))

import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from genimg.quiet import quiet_libraries  # noqa: E402

quiet_libraries()

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny random SD-shaped pipelines saved with save_pretrained (different weights)."""
    from genimg.models.tiny import build_tiny_sd_pipeline

    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {name: build_tiny_sd_pipeline(root / name, seed=seed) for name, seed in (("tiny-a", 0), ("tiny-b", 1))}


@pytest.fixture(scope="session")
def tiny_catalog(tiny_dirs):
    from genimg.models.catalog import ModelSpec

    defaults = {"width": 32, "height": 32, "steps": 2, "guidance": 5.0}
    catalog = {
        name: ModelSpec(id=name, name=name.upper(), backend="diffusers", source=str(path),
                        tasks=("text-to-image", "image-to-image", "inpaint"), dtype="fp32",
                        default=(name == "tiny-a"), defaults=dict(defaults))
        for name, path in tiny_dirs.items()
    }
    catalog["missing-hub"] = ModelSpec(id="missing-hub", name="Missing hub model", backend="diffusers",
                                       source="genimg-tests/does-not-exist", tasks=("text-to-image",))
    return catalog


@pytest.fixture()
def pool(tiny_catalog):
    from genimg.models.pool import ModelPool

    return ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)


@pytest.fixture(scope="session")
def shared_pool(tiny_catalog):
    """One pool for the app tests (loading once, like the real server)."""
    from genimg.models.pool import ModelPool

    return ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(shared_pool):
    """The dashboard over the tiny pool, served in-process on a free loopback port."""
    from genimg.ui.app import build_app

    demo = build_app(shared_pool)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, show_error=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class ServedApp:
    """``python app.py`` in its own process (the real dashboard, as a visitor reaches it), its peak RSS sampled."""

    def __init__(self, tmp: Path, env_overrides: dict[str, str] | None = None, command: list[str] | None = None,
                 start_timeout: float = 240, stop_timeout: float = 20):
        import subprocess
        import sys
        import threading
        import time
        import urllib.request

        import psutil

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
               "GENIMG_PRELOAD": "0", "GENIMG_OUTPUT_DIR": str(tmp / "outputs"), "GENIMG_DATA_DIR": str(tmp / "data"),
               "GENIMG_CACHE_DIR": str(tmp / "cache"), "GRADIO_TEMP_DIR": str(tmp / "gradio"),
               **(env_overrides or {})}
        env.pop("PORT", None)
        self.log = (tmp / "server.log").open("w")
        root = Path(__file__).resolve().parent.parent
        self.command = command or ["app.py"]
        self.stop_timeout = stop_timeout
        self.log_path = tmp / "server.log"
        self.proc = subprocess.Popen([sys.executable, *self.command], cwd=root, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        deadline = time.time() + start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(self.command)} exited with {self.proc.returncode}: "
                                   f"{(tmp / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{' '.join(self.command)} did not answer within {start_timeout:.0f} s: "
                                   f"{(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)

        def sample() -> None:
            while not self._stop.wait(0.05):
                try:
                    self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
                except psutil.Error:
                    return

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def alive(self) -> bool:
        """The server process runs and answers an HTTP request."""
        import urllib.request

        if self.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(self.url + "gradio_api/info", timeout=30) as response:
                return response.status == 200
        except OSError:
            return False

    def close(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(self.stop_timeout)
        except Exception:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def served_app(tmp_path_factory):
    """The real dashboard (`python app.py`, default catalog) in a subprocess, shared by the tests that need one."""
    app = ServedApp(tmp_path_factory.mktemp("served-app"))
    yield app
    app.close()
