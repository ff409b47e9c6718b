"""The CRDs ship as templates so that `helm upgrade` applies them (Helm never upgrades a chart's crds/
folder), kept on `helm uninstall` by `helm.sh/resource-policy: keep`. What the templates render is
exactly what `tollgate dev gen-crds` generates, plus the chart's labels and that annotation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from tests.integration.chart.render import CHART, KUBERNETES_VERSION, RELEASE, REPO, Chart, Rendered

NAMES = {
    "spendapprovals.tollgate.dev",
    "spendpolicies.tollgate.dev",
    "vaultkeys.tollgate.dev",
    "spendbudgets.tollgate.dev",
}
KEEP = "helm.sh/resource-policy"


def generated() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        found[crd["metadata"]["name"]] = crd
    return found


def crds(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in rendered.of_kind("CustomResourceDefinition")}


def test_the_chart_holds_exact_copies_of_the_generated_crds() -> None:
    source = {p.name: p.read_bytes() for p in sorted((REPO / "crds").glob("*.yaml"))}
    copies = {p.name: p.read_bytes() for p in sorted((CHART / "files" / "crds").glob("*.yaml"))}
    assert source, "crds/ is empty; run `tollgate dev gen-crds`"
    assert copies == source, "stale chart copies; run: tollgate dev gen-crds"


def test_no_crds_folder_remains_since_helm_upgrade_never_applies_it() -> None:
    assert not Path(CHART / "crds").exists()


def test_the_crds_are_rendered_as_templates_so_upgrades_apply_them(default: Rendered) -> None:
    rendered = crds(default)
    assert set(rendered) == NAMES
    for name, source in generated().items():
        crd = rendered[name]
        assert crd["spec"] == source["spec"], f"{name}: the rendered schema differs from the generated one"
        assert crd["metadata"]["annotations"][KEEP] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tollgate"
        kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)


def test_a_changed_crd_file_is_what_the_chart_renders(chart: Chart, tmp_path: Path) -> None:
    # What `helm upgrade` applies is what the templates render (crds/ would be skipped on upgrade).
    copy = tmp_path / "tollgate"
    shutil.copytree(CHART, copy)
    target = copy / "files" / "crds" / "tollgate.dev_vaultkeys.yaml"
    crd = yaml.safe_load(target.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Marker", "type": "string", "jsonPath": ".spec.marker"}
    ]
    target.write_text(yaml.safe_dump(crd))
    done = chart.run("template", RELEASE, str(copy), "--namespace", "tollgate")
    assert done.returncode == 0, done.stderr
    assert "jsonPath: .spec.marker" in done.stdout


def test_crds_can_be_left_to_another_owner_or_not_kept(chart: Chart) -> None:
    assert crds(chart.render({"crds": {"enabled": False}})) == {}
    for crd in crds(chart.render({"crds": {"keep": False}})).values():
        assert KEEP not in (crd["metadata"].get("annotations") or {})
