"""The one way a test tier starts a gateway (redis-server, ext_authz, Envoy and the audit, as local mode runs
them): GatewayOptions fields (upstreams, manifests, localstripe, audit, persistence, …) plus `env`, the
variables set while it runs, as a person exports them before `tollgate local`. The e2e tier's `gateway`
fixture (tests/e2e/conftest.py, options from each module's `gateway_options`), the operator tier's
gateways and the security tier's are this with their own options, so a gateway's setup is written once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from tollgate.local.gateway import GatewayOptions, LocalGateway


@contextmanager
def running_gateway(
    tmp_path_factory: pytest.TempPathFactory, name: str, options: Mapping[str, Any]
) -> Iterator[LocalGateway]:
    """A gateway started with `options` in a fresh work directory named after `name`, stopped on exit."""
    fields = dict(options)
    env: dict[str, str] = fields.pop("env", {})
    workdir = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in env.items():
            patch.setenv(variable, value)
        with LocalGateway(GatewayOptions(workdir=workdir, **fields)) as gw:
            yield gw
