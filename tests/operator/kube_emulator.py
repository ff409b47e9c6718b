"""A stand-in Kubernetes API server for the operator tier: KMock's emulator, in its own process.

The emulator runs apart from the test so that kopf (a subprocess) and the test talk to it over HTTP
exactly as they would to a real API server. It knows the built-in kinds (Secrets, Events, Namespaces,
NetworkPolicies) and the tollgate.dev CRDs with a status subresource. `python -m tests.operator.kube_emulator --port N
[--requests-log FILE]`; the log gets one JSON line per request (method, path, query, user agent), so a
test can hold the chart's RBAC against what the operator really asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import signal
import uuid
from typing import Any, TextIO

import aiohttp.web
import attrs
import kmock

GROUP_VERSION = "tollgate.dev/v1alpha1"
HISTORY = 64  # requests KMock may hold before the answered ones are dropped
NAMESPACES = "emulatednamespaces"  # the plural Namespace objects are kept under (see __call__)
KINDS = {
    "spendpolicies": ("SpendPolicy", "spendpolicy", {"sp"}),
    "vaultkeys": ("VaultKey", "vaultkey", {"vk"}),
    "spendapprovals": ("SpendApproval", "spendapproval", {"spa"}),
    "spendbudgets": ("SpendBudget", "spendbudget", {"sb"}),
}


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """The emulator plus what kopf relies on from a real API server: every write gets a new
    `metadata.resourceVersion` (kopf tests it in its JSON patches, and skips watch events older than
    its own last patch by it); a created object gets a `uid` and a `creationTimestamp`, and a name
    from `metadata.generateName` (kopf posts its Events that way)."""

    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _answering: dict[int, kmock.Request] = attrs.field(factory=dict, init=False)
    requests_log: TextIO | None = None

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if self.requests_log is not None:  # as the client sent it, before the rewrite below
            line = {
                "method": raw_request.method,
                "path": raw_request.path,
                "query": dict(raw_request.query),
                "agent": raw_request.headers.get("User-Agent", ""),
            }
            self.requests_log.write(json.dumps(line) + "\n")
            self.requests_log.flush()
        # KMock reads `/api/v1/namespaces/<name>` as "namespace <name>" and cannot serve Namespace
        # objects; under another plural they are an ordinary cluster-scoped kind.
        parts = raw_request.path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            path = "/".join(["", "api", "v1", NAMESPACES, *parts[3:]])
            # with_path drops the query (watch=true among it), so it is put back
            url = raw_request.rel_url.with_path(path).with_query(raw_request.rel_url.query)
            raw_request = raw_request.clone(rel_url=url)
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._answering[id(request)] = request
        self._forget_answered()
        try:
            return await self._answer(request)
        finally:
            del self._answering[id(request)]

    def _forget_answered(self) -> None:
        """KMock keeps every request it has served, and matches a new one by walking that whole history
        once per reaction: quadratic over a session, until the emulator took most of a core and the
        operator tier's timings doubled. Nothing here reads the history (the requests log is a file), so
        only the requests still being answered are kept."""
        history = self._requests  # KMock 0.8's record of requests (pinned in constraints.txt)
        if len(history) > HISTORY:
            history[:] = [r for r in history if id(r) in self._answering]

    async def _answer(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        data: Any = request.data
        version = str(next(self._versions))
        if request.action == kmock.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            meta["resourceVersion"] = version
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).isoformat())
        elif request.action == kmock.action.UPDATE and isinstance(data, dict):
            data.setdefault("metadata", {})["resourceVersion"] = version
        elif request.action == kmock.action.UPDATE and isinstance(data, list):
            data.append({"op": "replace", "path": "/metadata/resourceVersion", "value": version})
        return await super()._handle(request)


def emulator(requests_log: TextIO | None = None) -> ApiServer:
    emu = ApiServer(requests_log=requests_log)
    emu.resources.load_bundled()
    for plural, (kind, singular, short) in KINDS.items():
        emu.resources[f"{GROUP_VERSION}/{plural}"] = kmock.ResourceInfo(
            kind=kind,
            singular=singular,
            namespaced=True,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            shortnames=short,
            subresources={"status"},
        )
    emu.resources[f"v1/{NAMESPACES}"] = kmock.ResourceInfo(
        kind="Namespace",
        singular="namespace",
        namespaced=False,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )
    return emu


async def serve(port: int, requests_log: TextIO | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    emu = emulator(requests_log)
    async with emu, kmock.Server(emu, port=port):
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests-log", type=argparse.FileType("a"), default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.requests_log))


if __name__ == "__main__":
    main()
