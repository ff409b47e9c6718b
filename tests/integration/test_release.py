"""The release pipeline's own logic, run here: the step of .github/workflows/release.yml that points
the chart at the pushed image is executed on a copy of the chart, and the result renders the image by
the pushed digest with the release's version as the chart's version and appVersion. And the kind
tier's script says what is missing, and fails, where Docker or kind is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml
from tests.support.ci import required
from tests.support.kubetools import ToolUnavailable, helm_binary

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
DIGEST = "sha256:" + "ab" * 32


def workflow() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_a_tag_builds_both_architectures_and_pushes_image_and_chart_to_ghcr() -> None:
    jobs = workflow()["jobs"]
    assert isinstance(jobs, dict)
    (build,) = [s for s in jobs["image"]["steps"] if s.get("id") == "build"]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert build["with"]["target"] == "extauthz"
    push = [s for s in jobs["chart"]["steps"] if "helm push" in s.get("run", "")]
    assert push and "oci://ghcr.io/" in push[0]["run"]
    assert workflow()[True] == {"push": {"tags": ["v*.*.*"]}}  # YAML reads the `on:` key as True


def test_the_packaged_chart_follows_the_release_version_and_pins_the_pushed_digest(tmp_path: Path) -> None:
    with required("helm", ToolUnavailable):
        helm = helm_binary()
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    jobs = workflow()["jobs"]
    assert isinstance(jobs, dict)
    (step,) = [s for s in jobs["chart"]["steps"] if s.get("name", "").startswith("Point the chart")]
    env = {
        **os.environ,
        "PATH": f"{helm.parent}:{os.environ['PATH']}",
        "VERSION": "1.2.3",
        "IMAGE": "ghcr.io/someone/tollgate",
        "DIGEST": DIGEST,
        **{f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")},
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    chart = yaml.safe_load((tmp_path / "charts" / "tollgate" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("1.2.3", "1.2.3")
    argv = [str(helm), "template", "tg", str(tmp_path / "charts" / "tollgate"), "--namespace", "tollgate"]
    rendered = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=True).stdout
    images = {
        c["image"]
        for o in yaml.safe_load_all(rendered)
        if o and o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert f"ghcr.io/someone/tollgate@{DIGEST}" in images
    assert not [i for i in images if i.startswith("ghcr.io/") and "@" not in i]


def test_make_e2e_kind_says_what_is_missing_and_fails_without_docker_or_kind(tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # a PATH with the script's plain tools and neither docker nor kind
    bare.mkdir()
    for tool in ("dirname",):
        found = shutil.which(tool)
        assert found
        (bare / tool).symlink_to(found)
    done = subprocess.run(
        [shutil.which("bash") or "bash", str(REPO / "deploy" / "kind" / "e2e.sh")],
        env={"PATH": str(bare), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "docker kind not found on PATH" in done.stderr
    assert "make test` needs neither" in done.stderr
