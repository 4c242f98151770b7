"""Launching Debian's Chromium through Playwright, and driving JupyterLab, for the browser tests.

A plain module (not a conftest): ``from browser import launch_chromium`` in a test of this folder.
Never ``playwright install``: the tests use ``/usr/bin/chromium``. If it cannot start, the
tests fail (they are not skipped).

>>> from playwright.sync_api import sync_playwright               # doctest: +SKIP
>>> with sync_playwright() as p:                                  # doctest: +SKIP
...     browser = launch_chromium(p)
...     page = browser.new_page()
...     page.goto(f"http://127.0.0.1:{port}/lab/tree/x.ipynb?reset&token={token}")
...     wait_for_kernel_idle(page)
...     run_all_cells(page)
...     print(kernel_exec(page, "print(view.position, view.playing)"))
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = os.environ.get("STEMLAB_CHROMIUM", "/usr/bin/chromium")

# Headless, offline, and audio allowed to start without a user gesture (AudioContext "running").
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

# The visible notebook (a restored workspace can leave hidden panels matching the same selectors).
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def launch_chromium(playwright, *, args=(), **kwargs):
    """``playwright.chromium.launch`` on Debian's Chromium with :data:`CHROMIUM_ARGS` (plus ``args``).

    Raises ``FileNotFoundError`` with a hint when the executable is missing.
    """
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not executable:
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS, *args], **kwargs)


# ---- JupyterLab --------------------------------------------------------------------------------

def jupyter_lab_command(root_dir, *, port: int, token: str) -> list[str]:
    """Arguments for a private JupyterLab server on 127.0.0.1 (run with :func:`jupyter_env`).

    ``expose_app_in_browser`` gives the page ``window.jupyterapp``, which the helpers below use.
    """
    return ["jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
            "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]


def jupyter_env(home) -> dict[str, str]:
    """``os.environ`` plus private Jupyter/IPython/JupyterLab dirs under ``home`` (created).

    The venv's labextensions (anywidget, ipywidgets) are still found under its ``share/jupyter``.
    """
    home = Path(home)
    names = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
             "IPYTHONDIR": "ipython", "JUPYTERLAB_SETTINGS_DIR": "settings",
             "JUPYTERLAB_WORKSPACES_DIR": "workspaces"}
    env = dict(os.environ)
    for variable, folder in names.items():
        (home / folder).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / folder)
    # No "Would you like to get notified about official Jupyter news?" toast over the page.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text('{"fetchNews": "false"}')
    return env


def wait_for_kernel_idle(page, timeout: float = 60_000) -> None:
    """Wait until the current notebook's kernel is started and idle."""
    page.wait_for_function(
        "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=timeout)


def run_all_cells(page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


_KERNEL_EXEC = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = "";
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type, c = msg.content;
    if (t === "stream") out += c.text;
    else if (t === "execute_result") out += c.data["text/plain"];
    else if (t === "error") out += `${c.ename}: ${c.evalue}`;
  };
  await future.done;
  return out.trim();
}"""


def kernel_exec(page, code: str) -> str:
    """Run ``code`` in the current notebook's kernel (no cell is added); return its printed output.

    Reads and sets kernel state while the notebook's widgets stay live, e.g.
    ``kernel_exec(page, "print(view.muted)")`` or ``kernel_exec(page, "view.soloed = [False, True]")``.
    """
    return page.evaluate(_KERNEL_EXEC, code)


@contextlib.contextmanager
def jupyter_lab(root_dir, *, env: dict, token: str, log: Path):
    """JupyterLab serving ``root_dir`` on a free loopback port, with this venv's ``jupyter``; yields
    its base URL, and shuts its kernels and the server down afterwards."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = jupyter_lab_command(root_dir, port=port, token=token)
    command[0] = str(Path(sys.executable).with_name("jupyter"))  # this venv's jupyter
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"JupyterLab did not start: {log.read_text()[-2000:]}")
        yield base
    finally:
        for kernel in httpx.get(f"{base}/api/kernels", params={"token": token}, timeout=5).json():
            httpx.delete(f"{base}/api/kernels/{kernel['id']}", params={"token": token}, timeout=10)
        server.terminate()
        server.wait(timeout=20)
