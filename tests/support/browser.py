"""Headless Chromium for UI tests, via Playwright and Debian's ``chromium``.

Playwright's own browser download (``playwright install``) cannot work here
(no internet), so the system Chromium is launched through ``executable_path``.
Nothing happens at import time; Playwright is imported lazily.

Usage in a fixture::

    require_component(browser_unavailable_reason())  # tests/support/required.py
    with launched_browser() as browser:
        page = browser.new_page()
        ...
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import RunningProcess, free_port, running_process
from ui.browser import CHROMIUM_ARGS, browser_unavailable_reason, chromium_executable, launched_browser

__all__ = [
    "CHROMIUM_ARGS",
    "CONTRAST_JS",
    "browser_unavailable_reason",
    "chromium_executable",
    "console_problems",
    "launched_browser",
    "running_ui",
    "running_ui_process",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# What a clean Streamlit console never holds: a Python traceback, a deprecation warning (Python's
# DeprecationWarning, or Streamlit's own, logged by its ``deprecation_util``: the log format below names
# the logger), or Streamlit's notice that it had to convert a table it could not serialise to Arrow.
CONSOLE_PROBLEMS = re.compile(r"Traceback|deprecat|Serialization of dataframe to Arrow", re.IGNORECASE)


def console_problems(log: str) -> list[str]:
    """The lines of a Streamlit console log that a walkthrough must not leave."""
    return [line for line in log.splitlines() if CONSOLE_PROBLEMS.search(line)]


@contextlib.contextmanager
def running_ui_process(api_url: str, tmp_path: Path) -> Iterator[tuple[str, RunningProcess]]:
    """``streamlit run ui/app.py`` on a free port, pointed at ``api_url`` through the environment.

    Yields the UI's address and its process (whose ``log_text()`` is the console, stdout and stderr);
    on exit, fails if the console holds a traceback or a deprecation warning.
    """
    port = free_port()
    env = {**os.environ, "CREDIT_RISK_API_URL": api_url}
    env.pop("CREDIT_RISK_CONFIG_DIR", None)
    args = [
        sys.executable, "-m", "streamlit", "run", "ui/app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        "--logger.messageFormat", "%(asctime)s %(levelname)s %(name)s: %(message)s",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running_process(
        args, env=env, cwd=PROJECT_ROOT, ready_url=f"{url}/_stcore/health", log_path=tmp_path / f"streamlit-{port}.log"
    ) as process:
        yield url, process
        assert not console_problems(process.log_text()), process.log_tail()


@contextlib.contextmanager
def running_ui(api_url: str, tmp_path: Path) -> Iterator[str]:
    """The UI's address only (see ``running_ui_process``)."""
    with running_ui_process(api_url, tmp_path) as (url, _):
        yield url


# Every visible text node in the main area: its colour and the colour behind it, composited through
# semi-transparent backgrounds up to the first opaque one (the page's white when there is none), and
# the WCAG contrast ratio of the two. "coloured" is true when some element behind the text paints a colour.
CONTRAST_JS = """(root) => {
  const parse = (text) => {
    const m = text && text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let base = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
    const white = base.r > 250 && base.g > 250 && base.b > 250;
    return {colour: base, coloured: !white};
  };
  const lin = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const ratio = (a, b) => { const [h, l] = [lum(a), lum(b)].sort((x, y) => y - x); return (h + 0.05) / (l + 0.05); };
  const hex = (c) => '#' + [c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  const found = [];
  const walker = document.createTreeWalker(root || document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest('[aria-hidden="true"] svg, svg, style, script, noscript')) continue;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (rect.width === 0 || rect.height === 0 || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
    if (style.clip === 'rect(0px, 0px, 0px, 0px)' || rect.width <= 1) continue;  // screen-reader-only text
    const bg = behind(el);
    const fg = over(parse(style.color) || {r: 0, g: 0, b: 0, a: 1}, bg.colour);
    const size = parseFloat(style.fontSize), weight = parseInt(style.fontWeight, 10) || 400;
    const large = size >= 24 || (size >= 18.66 && weight >= 700);
    found.push({text: text.slice(0, 60), ratio: ratio(fg, bg.colour), needed: large ? 3 : 4.5,
                coloured: bg.coloured, colour: hex(fg), background: hex(bg.colour)});
  }
  return found;
}"""
