"""Reads of vendor objects a call refers to (the charge behind a full refund, a payment intent's
customer), made with the real key. Immutable parts are cached; amounts are always read fresh."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx

from tollgate.credentials import CredentialBox
from tollgate.errors import VendorLookupFailed
from tollgate.policy.grant import Grant
from tollgate.vendors.base import Found, Need, ObjectRef, Vendor


class ObjectNotFound(Exception):
    def __init__(self, ref: ObjectRef) -> None:
        super().__init__(f"{ref.collection} {ref.id} does not exist")
        self.ref = ref


class Lookup:
    def __init__(
        self,
        vendor_urls: Mapping[str, str],
        box: CredentialBox,
        *,
        timeout_s: float,
        cache_size: int,
        transport: httpx.AsyncBaseTransport | None = None,  # tests answer without a network
    ) -> None:
        self._urls = dict(vendor_urls)
        self._box = box
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._cache: OrderedDict[tuple[str, ...], dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size

    async def fetch(
        self, vendor: Vendor, grant: Grant, headers: Mapping[str, str], need: Need, found: Found
    ) -> None:
        # Objects belong to one vendor account, and to one sub-account within it (the vendor's cache scope):
        # never share them across keys, or across the sub-accounts one key reaches.
        scope = (vendor.name, grant.credential_fingerprint, vendor.cache_scope(headers))
        for ref in need.refs:
            ck = (*scope, ref.collection, ref.id)
            if not need.fresh and (hit := self._cache.get(ck)) is not None:
                self._cache.move_to_end(ck)
                found.objects[ref] = hit
                continue
            obj = await self._get(vendor, grant, headers, ref)
            found.objects[ref] = obj
            found.fresh.add(ref)
            if self._cache_size and (keep := vendor.cacheable(ref, obj)) is not None:
                self._cache[ck] = keep
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)

    async def _get(
        self, vendor: Vendor, grant: Grant, headers: Mapping[str, str], ref: ObjectRef
    ) -> dict[str, Any]:
        base = self._urls.get(vendor.name)
        if base is None:
            raise VendorLookupFailed(f"no base URL configured for vendor {vendor.name}")
        url = base.rstrip("/") + vendor.lookup_path(ref)
        real = self._box.open(grant.credential)
        try:
            resp = await self._client.get(url, headers=vendor.lookup_headers(real, headers))
        except httpx.HTTPError as exc:
            raise VendorLookupFailed(
                f"reading {ref.collection} {ref.id} from {vendor.name}: {type(exc).__name__}"
            ) from exc
        if resp.status_code == 404:
            raise ObjectNotFound(ref)
        if resp.status_code != 200:
            raise VendorLookupFailed(
                f"reading {ref.collection} {ref.id} from {vendor.name}: HTTP {resp.status_code}"
            )
        try:
            obj = resp.json()
        except ValueError as exc:
            raise VendorLookupFailed(f"{vendor.name} returned no JSON for {ref.collection} {ref.id}") from exc
        if not isinstance(obj, dict):
            raise VendorLookupFailed(f"{vendor.name} returned an unexpected {ref.collection} object")
        if obj.get("id", ref.id) != ref.id:  # the decision must rest on the very object the call names
            raise VendorLookupFailed(f"{vendor.name} answered {ref.collection} {ref.id} with another object")
        return obj

    async def close(self) -> None:
        await self._client.aclose()
