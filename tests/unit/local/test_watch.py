"""The manifests watcher's rules, read by read (poll() called directly: no thread, no clock): a change
is applied once two reads agree, a folder that does not load is reported and changes nothing, and a
change that could not be applied is tried again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollgate.local import watch
from tollgate.local.watch import ManifestWatcher
from tollgate.policy.manifests import Manifests

POLICY = """\
apiVersion: tollgate.dev/v1alpha1
kind: SpendPolicy
metadata: {name: p, namespace: agents}
spec: {vendor: stripe, dailyCapUsd: "CAP", allow: [GET /v1/balance]}
"""


class Recorder:
    def __init__(self) -> None:
        self.applied: list[Manifests] = []
        self.reported: list[list[str]] = []
        self.fail = False

    def apply(self, m: Manifests) -> None:
        if self.fail:
            raise ConnectionError("redis away")
        self.applied.append(m)

    def cap(self, n: int = -1) -> int:
        return self.applied[n].policies["agents/p"].spec.daily_cap_micro_usd


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "p.yaml").write_text(POLICY.replace("CAP", "10"))
    return tmp_path


def watcher(folder: Path, rec: Recorder) -> ManifestWatcher:
    return ManifestWatcher(folder, rec.apply, report=rec.reported.append)


def test_an_unchanged_folder_is_never_applied(folder: Path) -> None:
    rec = Recorder()
    w = watcher(folder, rec)
    for _ in range(3):
        w.poll()
    assert rec.applied == [] and w.applied == 0


def test_a_change_is_applied_once_two_reads_agree(folder: Path) -> None:
    rec = Recorder()
    w = watcher(folder, rec)
    (folder / "p.yaml").write_text(POLICY.replace("CAP", "20"))
    w.poll()
    assert rec.applied == []  # read once: it may still be being written
    w.poll()
    assert rec.cap() == 20_000_000 and w.applied == 1
    w.poll()
    assert len(rec.applied) == 1  # and only once


def test_a_file_caught_half_written_is_not_applied(folder: Path) -> None:
    rec = Recorder()
    w = watcher(folder, rec)
    text = POLICY.replace("CAP", "30")
    (folder / "p.yaml").write_text(text[: text.index("spec:")])  # valid YAML, policy without its spec
    w.poll()
    (folder / "p.yaml").write_text(text)  # the write completes before the next read
    w.poll()
    assert rec.applied == []
    w.poll()
    assert [rec.cap(i) for i in range(len(rec.applied))] == [30_000_000] and rec.reported == []


def test_a_folder_that_does_not_load_is_reported_and_applies_nothing(folder: Path) -> None:
    rec = Recorder()
    w = watcher(folder, rec)
    (folder / "p.yaml").write_text(POLICY.replace("CAP", "-1"))
    w.poll()
    w.poll()
    assert rec.applied == [] and w.refused == 1
    assert any("p.yaml" in p and "spec.dailyCapUsd" in p for p in rec.reported[0]), rec.reported
    w.poll()
    assert w.refused == 1  # reported once, not on every read
    (folder / "p.yaml").write_text(POLICY.replace("CAP", "40"))
    w.poll()
    w.poll()
    assert rec.cap() == 40_000_000 and w.applied == 1


def test_deleting_a_file_is_a_change(folder: Path) -> None:
    rec = Recorder()
    (folder / "q.yaml").write_text(POLICY.replace("name: p", "name: q").replace("CAP", "5"))
    w = watcher(folder, rec)
    (folder / "q.yaml").unlink()
    w.poll()
    w.poll()
    assert set(rec.applied[-1].policies) == {"agents/p"}


def test_a_change_that_could_not_be_applied_is_tried_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "RETRY_S", 0.0)
    rec = Recorder()
    w = watcher(folder, rec)
    rec.fail = True
    (folder / "p.yaml").write_text(POLICY.replace("CAP", "50"))
    w.poll()
    w.poll()
    assert w.applied == 0
    rec.fail = False
    w.poll()
    w.poll()
    assert rec.cap() == 50_000_000 and w.applied == 1
