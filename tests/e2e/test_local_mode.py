"""The README's first command, as a person runs it: `tollgate local <folder> --localstripe`."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stripe

from tollgate.local.processes import free_port, tcp_accepts

ROOT = Path(__file__).resolve().parents[2]


def test_local_mode_serves_the_example_manifests_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tollgate.cli.main",
                "local",
                str(ROOT / "deploy/examples/local"),
                "--localstripe",
                "--port",
                str(port),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        banner = out.read_text()
        assert f"http://127.0.0.1:{port}/stripe" in banner
        token = re.search(r"agents/support-bot: (tgk_\S+)", banner)
        assert token, banner

        agent = stripe.StripeClient(token[1], base_addresses={"api": f"http://127.0.0.1:{port}/stripe"})
        assert agent.v1.balance.retrieve().available  # forwarded with the real key
        with pytest.raises(stripe.PermissionError):
            agent.v1.payouts.create(params={"amount": 100, "currency": "usd"})
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, out.read_text()
    assert not tcp_accepts(port), "Envoy is still listening after shutdown"
    assert "stopping" in out.read_text()


def test_invalid_manifests_are_refused_with_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: tollgate.dev/v1alpha1\nkind: SpendPolicy\nmetadata: {name: p}\n"
        "spec: {vendor: stripe, dailyCapUsd: '-1', allow: ['POST /v1/refunds']}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "tollgate.cli.main", "local", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "bad.yaml" in r.stderr and "spec.dailyCapUsd" in r.stderr
