"""`tollgate picker web`: the restricted-key picker as one self-contained HTML page.

The page holds no Stripe knowledge and no coverage logic of its own. Python compiles the catalog
(`vendors/stripe/permissions.yaml`) into JSON: each use case's minimum permissions, computed here by
`picker.minimum_permissions`, plus the resources' weights and labels and the dangerous combinations. The
page's script only combines those per-use-case answers exactly as `picker.pick` does: per resource the
highest level (minimum permissions of a union of endpoints are the merge of each endpoint's own
permission), the weights and penalties summed, the allowlists and rules joined. The browser tests compare
the page with `picker.pick` over every single use case and every pair.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from tollgate.policy.manifests import GROUP_VERSION
from tollgate.vendors.stripe import picker


def page_data(catalog: picker.Catalog) -> dict[str, Any]:
    """Everything the page needs, as plain JSON."""
    use_cases = {}
    for name, uc in catalog.use_cases.items():
        spec = picker.build_policy_spec([uc]).model_dump(mode="json", by_alias=True, exclude_defaults=True)
        use_cases[name] = {
            "description": uc.description,
            "dailyCapUsd": uc.daily_cap_usd,
            "allow": list(uc.allow),
            "permissions": [
                {"resource": p.resource, "level": p.level.value}
                for p in picker.minimum_permissions(catalog, uc.allow)
            ],
            # As the policy spec writes them, with what `rule_conflicts` needs beside each.
            "params": [
                {"rule": dumped, "describe": rule.describe(), "endpoints": list(rule.endpoints or uc.allow)}
                for rule, dumped in zip(uc.params, spec.get("params", []), strict=True)
            ],
        }
    return {
        "apiVersion": GROUP_VERSION,
        "namespace": "default",
        "stripeCliNote": picker.STRIPE_CLI_NOTE,
        "bands": [{"floor": floor, "band": band} for floor, band in picker.BANDS],
        "resources": {
            name: {
                "label": r.label,
                "readWeight": r.read_weight,
                "writeWeight": r.write_weight,
                "irreversible": r.irreversible,
            }
            for name, r in catalog.resources.items()
        },
        "dangerous": [
            {
                "requires": [{"resource": p.resource, "level": p.level.value} for p in d.requires],
                "penalty": d.penalty,
                "why": d.why,
            }
            for d in catalog.dangerous
        ],
        "useCases": use_cases,
    }


def _asset(name: str) -> str:
    return resources.files("tollgate.web").joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    # Inside <script>, only "</" could end the element early; "<\/" is the same JSON string.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def render(catalog: picker.Catalog | None = None) -> str:
    """The whole page: markup, style, script and data in one file."""
    data = page_data(catalog or picker.load_catalog())
    return (
        _asset("picker.html")
        .replace("/*STYLE*/", _asset("page.css"))
        .replace("/*DATA*/", _script_json(data))
        .replace("/*SCRIPT*/", _asset("picker.js"))
    )


def serve(page: str, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A server for this one page only (call `serve_forever`); port 0 picks a free port."""
    body = page.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints the URL once
            pass

    return ThreadingHTTPServer((host, port), Handler)
