"""`qkt backtest --report out.html` opened in a real headless Chromium without network: the
charts must have been drawn by the inlined plotly.js, not merely be present as markup."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_backtest import _write_candles
from tests.worker.harness import qkt_args

# Everything that could reach the network is off; a resolver that resolves nothing and a proxy
# on a closed loopback port make sure that a page needing a fetch would render nothing.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--virtual-time-budget=10000",
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.geteuid() != 0:
            pytest.skip("chromium is not installed and this is not root: `make chromium` as root")
        pytest.fail("chromium is missing: `make test` installs it (the chromium target)")
    return found


def test_the_report_renders_its_charts_offline_in_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    _write_candles(tmp_path / "BTCUSDT.csv")
    strategy = tmp_path / "s.qkt"
    strategy.write_text(
        "STRATEGY rep VERSION 3\nSYMBOLS btc = BACKTEST:BTCUSDT EVERY 1h\nRULES\n"
        "WHEN btc.close > SMA(btc.close, 20) AND POSITION.btc == 0 THEN BUY btc SIZING 1\n"
        "WHEN btc.close < SMA(btc.close, 20) AND POSITION.btc > 0 THEN CLOSE btc\n"
    )
    report = tmp_path / "out.html"
    result = subprocess.run(
        qkt_args("backtest", strategy, "--data", tmp_path / "BTCUSDT.csv", "--report", report),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    page = report.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)  # nothing to fetch
    dom = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    # plotly.js ran: each chart became an SVG with its traces drawn.
    for chart in ("equity", "drawdown", "monthly"):
        assert re.search(rf'id="{chart}"[^>]*class="plotly-graph-div[^"]*js-plotly-plot', dom), (
            chart
        )
    assert dom.count('class="main-svg"') >= 3
    lines = re.findall(r'class="js-line"[^>]*d="M([^"]+)"', dom) + re.findall(
        r'd="M([^"]+)"[^>]*class="js-line"', dom
    )
    assert len(lines) >= 3  # strategy, buy and hold, drawdown
    assert "heatmaplayer" in dom  # monthly returns
    assert "buy and hold" in dom and "Monthly returns" in dom
    # The metrics and trades tables are plain HTML.
    assert "total return" in dom and "<th>realized</th>" in dom
