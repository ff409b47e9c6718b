"""`tollgate picker …`: the least Stripe restricted-key permissions for agent use cases, and a policy to match."""

from __future__ import annotations

import json
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from typer.core import TyperGroup

from tollgate.policy.manifests import InvalidManifests, load_path
from tollgate.vendors.stripe import picker


class _DefaultToPick(TyperGroup):
    """`tollgate picker USE_CASE…` means `tollgate picker pick USE_CASE…`; `check`, `list`, `web` stay commands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: typer's vendored click Context
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["pick", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultToPick,
    no_args_is_help=True,
    help="Least-privilege Stripe restricted keys for agent use cases. "
    "`tollgate picker USE_CASE...` is short for `tollgate picker pick USE_CASE...`; "
    "`tollgate picker web` writes the same picker as a web page.",
)


class Output(StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="text, json or yaml.")]


@app.command("pick")
def pick_cmd(
    use_cases: Annotated[
        list[str], typer.Argument(help="One or more use cases (see `tollgate picker list`).")
    ],
    output: OutputOption = Output.text,
    name: Annotated[
        str | None, typer.Option(help="SpendPolicy name (default: the use cases joined).")
    ] = None,
    namespace: Annotated[str, typer.Option(help="SpendPolicy namespace.")] = "default",
    policy_out: Annotated[Path | None, typer.Option(help="Also write the SpendPolicy manifest here.")] = None,
) -> None:
    """Print the minimum permissions, how to grant them, the blast radius, warnings and a SpendPolicy."""
    catalog = picker.load_catalog()
    try:
        result = picker.pick(catalog, use_cases, policy_name=name, namespace=namespace)
    except picker.UnknownUseCase as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if policy_out is not None:
        policy_out.write_text(_yaml(result.policy))
    if output is Output.text:
        typer.echo(_text(result), nl=False)
    else:
        typer.echo(_dump(picker.describe(result), output), nl=False)


@app.command("web")
def web_cmd(
    out: Annotated[Path, typer.Option(help="Write the page here.")] = Path("tollgate-picker.html"),
    serve: Annotated[bool, typer.Option(help="Also serve it on localhost until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 8765,
) -> None:
    """Write the picker as one self-contained HTML page (no server or network needed to use it)."""
    from tollgate.web import picker_page

    page = picker_page.render()
    out.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {out} (open it in a browser; it loads nothing from the network)")
    if not serve:
        return
    server = picker_page.serve(page, port=port)
    typer.echo(f"serving http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("list")
def list_cmd(output: OutputOption = Output.text) -> None:
    """The use cases the picker knows."""
    catalog = picker.load_catalog()
    if output is Output.text:
        width = max(len(n) for n in catalog.use_cases)
        for n, uc in catalog.use_cases.items():
            typer.echo(f"{n.ljust(width)}  {uc.description}")
        return
    data = {n: uc.model_dump(mode="json") for n, uc in catalog.use_cases.items()}
    typer.echo(_dump(data, output), nl=False)


@app.command("check")
def check_cmd(
    policy: Annotated[Path, typer.Argument(help="A SpendPolicy manifest file or folder.", exists=True)],
    permission: Annotated[
        list[str],
        typer.Option(
            help="A permission the restricted key has: charge:read, refund:write or refund_write (repeat)."
        ),
    ],
    output: OutputOption = Output.text,
) -> None:
    """Report allowlist entries the restricted key's permissions do not cover (exit 1 when any)."""
    catalog = picker.load_catalog()
    try:
        granted = [picker.Permission.parse(p) for p in permission]
        catalog.granted_patterns(granted)  # rejects unknown resources before anything is reported
        manifests = load_path(policy)
    except ValueError as exc:
        problems = exc.problems if isinstance(exc, InvalidManifests) else [str(exc)]
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    report: dict[str, list[dict[str, Any]]] = {}
    for pid, obj in sorted(manifests.policies.items()):
        if obj.spec.vendor != picker.VENDOR:
            continue
        gaps = picker.check_policy(catalog, obj.spec, granted)
        report[pid] = [g.model_dump() for g in gaps]
    if not report:
        typer.echo("error: no stripe SpendPolicy found", err=True)
        raise typer.Exit(2)
    if output is Output.text:
        typer.echo(_check_text(report), nl=False)
    else:
        typer.echo(_dump(report, output), nl=False)
    if any(report.values()):
        raise typer.Exit(1)


def _dump(data: Any, output: Output) -> str:
    return json.dumps(data, indent=2) + "\n" if output is Output.json else _yaml(data)


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _text(r: picker.Pick) -> str:
    br = r.blast_radius
    width = max(len(p.dashboard) for p in r.permissions)
    lines = [f"Use cases: {', '.join(r.use_cases)}", "", "Minimum restricted-key permissions:"]
    for p in r.permissions:
        flag = "  (irreversible money movement)" if p.irreversible else ""
        lines.append(f"  {p.dashboard.ljust(width)}  {p.permission}{flag}")
    lines += [
        "  Every other resource: None.",
        "",
        *textwrap.wrap(r.stripe_cli_note, 100),
        *(f"  {line}" for line in r.stripe_cli),
        "",
        f"Blast radius: {br.score} ({br.band})",
        *(f"  {k}: {v}" for k, v in br.parts.items()),
    ]
    if br.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  ! {' + '.join(w.permissions)}: {w.why}" for w in br.warnings]
    if r.rule_conflicts:
        lines += ["", "Parameter rules that meet (review the policy):"]
        lines += [f"  ~ {c}" for c in r.rule_conflicts]
    lines += [
        "",
        "SpendPolicy (narrow it further with customers:, connectedAccounts: and expiresAt: where you can):",
        "---",
        _yaml(r.policy).rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


def _check_text(report: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for pid, gaps in report.items():
        if not gaps:
            lines.append(f"ok: {pid}: every allowlist entry is within the key's permissions")
            continue
        lines.append(f"{pid}: {len(gaps)} allowlist entr{'y' if len(gaps) == 1 else 'ies'} beyond the key:")
        for g in gaps:
            need = f"needs {g['needs']}" if g["needs"] else "broader than any single permission"
            lines.append(f"  {g['endpoint']}  ({need})")
    return "\n".join(lines) + "\n"
