"""The README's first command, as a person runs it: `tollgate local <folder> --localstripe`."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stripe

from tollgate.local.processes import free_port, tcp_accepts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy/examples/local"


def start_local(
    port: int, workdir: Path, out: Path, *more: str, folder: Path = EXAMPLE
) -> tuple[subprocess.Popen[bytes], str]:
    """`tollgate local deploy/examples/local --localstripe`, once its banner is out: (process, banner)."""
    argv = [sys.executable, "-m", "tollgate.cli.main", "local", str(folder)]
    argv += ["--localstripe", "--port", str(port), "--workdir", str(workdir), *more]
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "Ctrl-C" not in out.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(out.read_text())
        time.sleep(0.1)
    return proc, out.read_text()


def stop_local(proc: subprocess.Popen[bytes], out: Path, port: int) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, out.read_text()
    assert not tcp_accepts(port), "Envoy is still listening after shutdown"
    assert "stopping" in out.read_text()


def token_in(banner: str) -> str:
    token = re.search(r"agents/support-bot: (tgk_\S+)", banner)
    assert token, banner
    return token[1]


def test_local_mode_serves_the_example_manifests_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out.txt"
    proc, banner = start_local(port, tmp_path / "work", out)
    try:
        assert f"http://127.0.0.1:{port}/stripe" in banner
        # Each part is announced as it starts, and only the folder's vendor (Stripe) is named.
        assert "… starting Redis" in banner and "… starting Envoy" in banner
        assert "twilio" not in banner.lower() and "resend" not in banner.lower()
        assert re.search(r"Demo data in localstripe: customer cus_\w+ .*order 1001 ch_\w+ \$150\.00", banner)
        agent = stripe.StripeClient(
            token_in(banner), base_addresses={"api": f"http://127.0.0.1:{port}/stripe"}
        )
        assert agent.v1.balance.retrieve().available  # forwarded with the real key
        with pytest.raises(stripe.PermissionError):
            agent.v1.payouts.create(params={"amount": 100, "currency": "usd"})
    finally:
        stop_local(proc, out, port)


def test_a_restart_keeps_the_work_dir_and_the_vault_tokens_unless_rotated(tmp_path: Path) -> None:
    port, work = free_port(), tmp_path / "work"
    tokens = []
    for n, more in enumerate([(), (), ("--rotate-tokens",)]):
        out = tmp_path / f"out-{n}.txt"
        proc, banner = start_local(port, work, out, *more)
        try:
            tokens.append(token_in(banner))
            agent = stripe.StripeClient(tokens[-1], base_addresses={"api": f"http://127.0.0.1:{port}/stripe"})
            assert agent.v1.balance.retrieve().available
        finally:
            stop_local(proc, out, port)
    assert tokens[0] == tokens[1] != tokens[2]
    assert {p.name for p in work.iterdir()} >= {"audit.db", "tokens.json", "credentials.key", "appendonlydir"}
    assert (work / "tokens.json").stat().st_mode & 0o077 == 0  # only its owner can read the tokens


def test_a_taken_port_fails_the_start_with_a_message_naming_it(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        argv = [sys.executable, "-m", "tollgate.cli.main", "local", str(ROOT / "deploy/examples/local")]
        argv += ["--port", str(port), "--workdir", str(tmp_path / "work"), "--localstripe"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"port {port}" in r.stderr and "already taken" in r.stderr


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


def test_the_banner_names_only_the_vendors_the_folder_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The messaging example: Twilio and Resend policies, no Stripe (nothing here calls the vendors).
    monkeypatch.setenv("TWILIO_CREDENTIAL", "AC00000000000000000000000000000000:twilio-token-for-tests")
    monkeypatch.setenv("RESEND_API_KEY", "re_test_banner_0123456789abcdef")
    port = free_port()
    out = tmp_path / "out.txt"
    argv = [sys.executable, "-m", "tollgate.cli.main", "local", str(ROOT / "deploy/examples/messaging")]
    argv += ["--port", str(port), "--workdir", str(tmp_path / "work")]
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        banner = out.read_text()
        assert f"  twilio: http://127.0.0.1:{port}/twilio → " in banner
        assert f"  resend: http://127.0.0.1:{port}/resend → " in banner
        assert "/stripe" not in banner and "import stripe" not in banner
    finally:
        stop_local(proc, out, port)
