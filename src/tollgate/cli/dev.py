"""`tollgate dev …`: maintainers' commands that write generated files into the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Maintainers' commands: generated files.")

DEFAULT_DIRS = [Path("crds"), Path("charts/tollgate/files/crds")]


@app.command("gen-crds")
def gen_crds(
    out: Annotated[
        list[Path] | None,
        typer.Option(
            help="Folder to write the CRDs into (repeat); default crds/ and charts/tollgate/files/crds/."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Write nothing; exit 1 if a folder's CRDs differ from the models.")
    ] = False,
) -> None:
    """Generate the SpendPolicy, VaultKey and SpendBudget CustomResourceDefinitions from the pydantic models."""
    from tollgate.policy.crd import rendered

    stale: list[Path] = []
    for folder in out or DEFAULT_DIRS:
        for name, text in rendered().items():
            path = folder / name
            current = path.read_text() if path.exists() else None
            if current == text:
                continue
            if check:
                stale.append(path)
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            typer.echo(f"wrote {path}")
    if stale:
        for path in stale:
            typer.echo(f"stale: {path}", err=True)
        typer.echo("run `tollgate dev gen-crds` in the repository root and commit the result", err=True)
        raise typer.Exit(1)


STRIPE_ROUTES = Path("src/tollgate/vendors/stripe/routes.csv")


@app.command("stripe-routes")
def stripe_routes(
    out: Annotated[Path, typer.Option(help="Where the table goes.")] = STRIPE_ROUTES,
    check: Annotated[
        bool, typer.Option(help="Write nothing; exit 1 if the table differs from the installed SDK's routes.")
    ] = False,
    summary: Annotated[
        bool, typer.Option(help="Print the README's table of rules per family and stop.")
    ] = False,
) -> None:
    """Classify every route of the installed stripe SDK (catalog.py's rules) into routes.csv."""
    from tollgate.cli.stripe_sdk import sdk_routes, sdk_version
    from tollgate.vendors.stripe import catalog

    try:
        rows = catalog.table((r.method, r.path, r.name, r.api) for r in sdk_routes())
    except catalog.Unclassified as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if summary:
        typer.echo(catalog.summary(rows))
        return
    text = catalog.render_csv(rows, sdk_version())
    current = out.read_text() if out.exists() else None
    if current == text:
        typer.echo(f"{out}: {len(rows)} routes, up to date")
        return
    if check:
        typer.echo(f"stale: {out}; run `tollgate dev stripe-routes` and commit the result", err=True)
        raise typer.Exit(1)
    out.write_text(text)
    typer.echo(f"wrote {out}: {len(rows)} routes")
