"""`tollgate` console script."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from tollgate import __version__
from tollgate.cli import approvals as approvals_cli
from tollgate.cli import audit as audit_cli
from tollgate.cli import dev as dev_cli
from tollgate.cli import picker as picker_cli
from tollgate.policy.manifests import InvalidManifests, load_path

app = typer.Typer(no_args_is_help=True, help="Spend caps and scopes for AI agents' API keys.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tollgate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Spend caps and scopes for AI agents' API keys."""


@app.command()
def check(
    manifests: Annotated[Path, typer.Argument(help="A manifest file or a folder of them.", exists=True)],
) -> None:
    """Validate SpendPolicy / VaultKey / SpendBudget / Secret manifests exactly as the gateway would; other
    kinds are skipped."""
    from tollgate.cli.check import allow_warnings

    try:
        m = load_path(manifests)
    except InvalidManifests as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    for warning in allow_warnings(m):
        typer.echo(f"warning: {warning}", err=True)
    skipped = f", skipped {len(m.skipped)} of other kinds" if m.skipped else ""
    budgets = f", {len(m.budgets)} SpendBudget" if m.budgets else ""
    typer.echo(
        f"ok: {len(m.policies)} SpendPolicy, {len(m.keys)} VaultKey{budgets}, {len(m.secrets)} Secret{skipped}"
    )


@app.command()
def local(
    manifests: Annotated[
        Path,
        typer.Argument(
            help="A folder of SpendPolicy, VaultKey, SpendBudget and Secret manifests.", exists=True
        ),
    ],
    port: Annotated[int, typer.Option(help="Port agents point their SDK at.")] = 10000,
    redis_url: Annotated[
        str | None, typer.Option(help="Use this Redis instead of starting a private one.")
    ] = None,
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="Send a vendor's traffic elsewhere: stripe=http://127.0.0.1:12111"),
    ] = None,
    localstripe: Annotated[
        bool, typer.Option(help="Start localstripe and send Stripe traffic to it (no network).")
    ] = False,
    max_request_bytes: Annotated[
        int, typer.Option(help="Largest request body; a larger one gets 413 and is never sent.")
    ] = 1_048_576,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where state is kept across runs (audit database, Redis data, vault tokens); "
            "default: .tollgate/ beside the manifests."
        ),
    ] = None,
    rotate_tokens: Annotated[
        bool, typer.Option(help="Mint new vault tokens instead of keeping those of the last run.")
    ] = False,
) -> None:
    """Run a whole gateway on this machine until interrupted: Redis, ext_authz, Envoy and the audit,
    each restarted if it dies. Edits of the manifests folder are applied as they are saved."""
    from tollgate.local.gateway import GatewayOptions, LocalGateway
    from tollgate.local.processes import ProcessError
    from tollgate.logging_setup import configure

    configure("INFO")  # the supervisor's restarts are worth seeing
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every request of the demo data's seeding
    options = GatewayOptions(
        manifests=manifests,
        listen_port=port,
        redis_url=redis_url,
        localstripe=localstripe,
        demo_data=localstripe,
        max_request_bytes=max_request_bytes,
        workdir=workdir or manifests.resolve().parent / ".tollgate",
        persist=True,
        rotate_tokens=rotate_tokens,
        watch=True,
        on_follow=_print_followed,
        on_refused=_print_refused,
        progress=lambda step: typer.echo(f"… {step}", err=True),
    )  # fmt: skip
    for item in upstream or []:
        name, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            typer.echo(f"error: --upstream {item!r} must look like stripe=https://host", err=True)
            raise typer.Exit(2)
        options.upstreams[name] = url
    try:
        gateway = LocalGateway(options).start()
    except InvalidManifests as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    except ProcessError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        _print_banner(gateway)
        _wait_for_signal()
    finally:
        typer.echo("stopping…", err=True)
        gateway.stop()


app.command()(approvals_cli.approve)
app.command()(approvals_cli.reject)
app.command()(approvals_cli.approvals)
app.add_typer(audit_cli.app, name="audit")
app.add_typer(dev_cli.app, name="dev")
app.add_typer(picker_cli.app, name="picker")

envoy_app = typer.Typer(no_args_is_help=True, help="Envoy configuration.")
app.add_typer(envoy_app, name="envoy")


@envoy_app.command("render")
def envoy_render(
    extauthz: Annotated[list[str], typer.Option(help="ext_authz endpoint host:port (repeat for several).")],
    vendor: Annotated[
        list[str], typer.Option(help="name=base URL, e.g. stripe=https://api.stripe.com (repeat).")
    ],
    listen_address: Annotated[str, typer.Option(help="Address Envoy listens on.")] = "0.0.0.0",
    listen_port: Annotated[int, typer.Option(help="Port agents' SDKs point at.")] = 8080,
    admin_port: Annotated[int | None, typer.Option(help="Envoy admin port (bound to 127.0.0.1).")] = None,
    extauthz_timeout_ms: Annotated[
        int, typer.Option(help="Check timeout; on timeout the call is denied.")
    ] = 1000,
    access_log_path: Annotated[
        str, typer.Option(help="Where Envoy writes one JSON line per call.")
    ] = "/dev/stdout",
    max_request_bytes: Annotated[
        int, typer.Option(help="Largest request body; a larger one gets 413 and is never sent.")
    ] = 1_048_576,
    request_timeout_s: Annotated[
        int, typer.Option(help="A request must arrive whole within this time, else 408.")
    ] = 60,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Render the Envoy config (the only source of it: local mode and the chart's init container use this)."""
    from pydantic import ValidationError

    from tollgate.envoy.params import EnvoyParams, VendorUpstream
    from tollgate.envoy.render import render_yaml
    from tollgate.vendors import captured_fields
    from tollgate.vendors.envoy_replies import local_replies

    try:
        vendors = []
        for item in vendor:
            name, sep, url = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--vendor {item!r} must look like stripe=https://api.stripe.com")
            vendors.append(VendorUpstream(name=name, prefix=f"/{name}", url=url))
        params = EnvoyParams(
            listen_address=listen_address,
            listen_port=listen_port,
            admin_port=admin_port,
            extauthz_endpoints=extauthz,
            extauthz_timeout_ms=extauthz_timeout_ms,
            access_log_path=access_log_path,
            max_request_bytes=max_request_bytes,
            request_timeout_s=request_timeout_s,
            vendors=vendors,
            local_replies=local_replies({v.name: v.prefix for v in vendors}),
            captured_fields=captured_fields(),
        )
    except ValidationError as exc:
        for err in exc.errors():
            typer.echo(f"error: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    text = render_yaml(params)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


def _print_followed(lines: list[str]) -> None:
    typer.echo("manifests changed, applied:")
    for line in lines:
        typer.echo(f"  {line}")
    sys.stdout.flush()


def _print_refused(problems: list[str]) -> None:
    typer.echo("manifests changed but do not load; nothing was applied, the last good state stays:", err=True)
    for problem in problems:
        typer.echo(f"  error: {problem}", err=True)


def _print_banner(gateway: object) -> None:
    from tollgate.local.gateway import LocalGateway

    assert isinstance(gateway, LocalGateway)
    served = gateway.served_vendors()  # the folder's vendors only: the others have no key to call them with
    first = served[0] if served else "stripe"
    typer.echo(f"Tollgate is up. Point agents' SDKs at {gateway.base_url(first)}")
    for vendor in served:
        typer.echo(f"  {vendor}: {gateway.base_url(vendor)} → {gateway.upstreams[vendor]}")
    typer.echo(
        f"Vault keys (hand one to each agent; kept in {gateway.workdir} across restarts, "
        "--rotate-tokens mints new ones):"
    )
    for key_id, outcome in sorted(gateway.outcomes.items()):
        token = gateway.tokens.get(key_id)
        typer.echo(
            f"  {key_id}: {token}" if token else f"  {key_id}: not ready ({outcome.state}: {outcome.message})"
        )
    typer.echo(f"Access log (one JSON line per call): {gateway.access_log}")
    typer.echo(f"Audit (one SQL row per call): tollgate audit spend --db {gateway.audit_url}")
    if gateway.demo is not None:
        typer.echo(f"Demo data in localstripe: {gateway.demo.describe()}")
    if "stripe" in served:
        typer.echo("Try it:")
        typer.echo(f'  curl {gateway.base_url("stripe")}/v1/balance -u "<vault key>:"')
        typer.echo(
            f'  python -c \'import stripe; c = stripe.StripeClient("<vault key>", '
            f'base_addresses={{"api": "{gateway.base_url("stripe")}"}}); print(c.v1.balance.retrieve())\''
        )
    typer.echo(
        f"Edits of {gateway.options.manifests} are applied as they are saved. Ctrl-C stops everything."
    )
    sys.stdout.flush()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    app()
