"""The operator's only use of the Kubernetes API beyond kopf's own: vendor-key Secrets read, token
Secrets written, agent namespaces' egress NetworkPolicies kept, the cluster listed for a resync, and
Events posted. Works in-cluster (service account)
or with a kubeconfig (KUBECONFIG), like kopf's own login."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import kopf
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tollgate.errors import InvalidSpec, SecretNotFound, TollgateError
from tollgate.policy.manifests import GROUP_VERSION
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.reconcile.policies import PolicyLookup, parse_budget, parse_policy
from tollgate.reconcile.resync import ClusterState
from tollgate.reconcile.status import Transition
from tollgate.reconcile.tokens import VaultKeyObject

GROUP, VERSION = GROUP_VERSION.split("/")
# kopf resource selectors
VAULT_KEYS = (GROUP, VERSION, "vaultkeys")
SPEND_POLICIES = (GROUP, VERSION, "spendpolicies")
SPEND_APPROVALS = (GROUP, VERSION, "spendapprovals")
SPEND_BUDGETS = (GROUP, VERSION, "spendbudgets")
TOKEN_KEY = "token"
MANAGED_BY = {"app.kubernetes.io/managed-by": "tollgate"}
_MERGE_PATCH = "application/merge-patch+json"


class KubeUnavailable(TollgateError):
    """The Kubernetes API could not be reached or answered an error; the operation may be retried."""


class KubeApi:
    """SecretReader and TokenSecrets over the Kubernetes API, and the listing a resync compares against."""

    def __init__(self, api: client.ApiClient, namespaces: frozenset[str] | None = None) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._networking = client.NetworkingV1Api(api)
        self.namespaces = namespaces

    @classmethod
    async def connect(cls, namespaces: frozenset[str] | None = None) -> KubeApi:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            return cls(client.ApiClient(configuration=cfg), namespaces)
        return cls(await config.new_client_from_config(), namespaces)

    async def close(self) -> None:
        await self._api.close()

    # ---- SecretReader -------------------------------------------------------------------------------

    async def read(self, namespace: str, name: str, key: str) -> str:
        secret = await self._get_secret(namespace, name)
        if secret is None:
            raise SecretNotFound(f"Secret {namespace}/{name} not found")
        value = _decoded(secret, key)
        if value is None:
            raise SecretNotFound(f"Secret {namespace}/{name} has no key {key!r}")
        return value

    # ---- TokenSecrets -------------------------------------------------------------------------------

    async def read_token(self, key: VaultKeyObject) -> str | None:
        secret = await self._get_secret(key.namespace, key.token_secret_name)
        if secret is None or not any(ref.uid == key.uid for ref in _owners(secret)):
            return None
        return _decoded(secret, TOKEN_KEY)

    async def write_token(self, key: VaultKeyObject, token: str) -> None:
        name = key.token_secret_name
        owner = {
            "apiVersion": GROUP_VERSION,
            "kind": "VaultKey",
            "name": key.name,
            "uid": key.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        labels = {**MANAGED_BY, "tollgate.dev/vault-key": key.name}
        data = {TOKEN_KEY: base64.b64encode(token.encode()).decode()}
        existing = await self._get_secret(key.namespace, name)
        if existing is None:
            meta = {"name": name, "namespace": key.namespace, "labels": labels, "ownerReferences": [owner]}
            body: Any = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta,
                "type": "Opaque",
                "data": data,
            }
            await self._call(self._core.create_namespaced_secret(key.namespace, body))
            return
        # Only a Secret this key (or an earlier VaultKey of the same name) owns may be overwritten:
        # taking over someone else's Secret would hand it to garbage collection with the key.
        if not any(ref.kind == "VaultKey" and ref.name == key.name for ref in _owners(existing)):
            raise InvalidSpec(
                "spec.tokenSecretName",
                f"Secret {key.namespace}/{name} already exists and is not owned by VaultKey {key.name}; "
                "choose another tokenSecretName or delete that Secret",
            )
        patch = {"metadata": {"labels": labels, "ownerReferences": [owner]}, "data": data}
        # A JSON merge patch replaces ownerReferences (a strategic merge, the client's default for a
        # dict, would keep the earlier owner beside ours). The client's stubs omit `_content_type`.
        await self._call(
            self._core.patch_namespaced_secret(  # type: ignore[call-arg]
                name, key.namespace, patch, _content_type=_MERGE_PATCH
            )
        )

    # ---- NetworkPolicies (confinement.NetworkPolicies) --------------------------------------------

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = await self._call(
            self._networking.read_namespaced_network_policy(name, namespace),
            f"reading NetworkPolicy {namespace}/{name}",
            tolerate=404,
        )
        return None if found is None else cast(dict[str, Any], self._api.sanitize_for_serialization(found))

    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> None:
        # The client accepts the plain dict as the API serves it; its stubs name only the model class.
        await self._call(self._networking.create_namespaced_network_policy(namespace, cast(Any, body)))

    async def patch_network_policy(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        # A JSON merge patch: its nulls remove what was added (a strategic merge would keep list items).
        await self._call(
            self._networking.patch_namespaced_network_policy(  # type: ignore[call-arg]
                name, namespace, patch, _content_type=_MERGE_PATCH
            )
        )

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        await self._call(  # already gone is what we wanted
            self._networking.delete_namespaced_network_policy(name, namespace),
            f"deleting NetworkPolicy {namespace}/{name}",
            tolerate=404,
        )

    # ---- SpendApprovals (approvals.py mirrors Redis's approvals as them) ----------------------------

    async def list_spend_approvals(self) -> list[dict[str, Any]]:
        return await self._list("spendapprovals")

    async def create_spend_approval(self, body: dict[str, Any]) -> None:
        """Create it; one already there (a mirror round that raced the last) is left as it is."""
        namespace = body["metadata"]["namespace"]
        await self._call(
            self._custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "spendapprovals", body),
            "creating SpendApproval",
            tolerate=409,
        )

    async def patch_spend_approval_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._call(
            self._custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                GROUP,
                VERSION,
                namespace,
                "spendapprovals",
                name,
                {"status": status},
                _content_type=_MERGE_PATCH,
            )
        )

    async def delete_spend_approval(self, namespace: str, name: str) -> None:
        await self._call(
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "spendapprovals", name),
            f"deleting SpendApproval {namespace}/{name}",
            tolerate=404,
        )

    async def post_event(self, ref: Mapping[str, Any], event: Transition) -> None:
        """An Event about `ref` (object_ref's shape), created at once: for code that may run outside a kopf
        handler (the approvals' mirror loop), where kopf.event (post_event below) has no queue to use."""
        meta = ref["metadata"]
        now = datetime.now(UTC).isoformat()
        body = {
            "metadata": {"namespace": meta["namespace"], "generateName": "kopf-event-"},
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": "kopf"},  # as kopf's own Events: one "From" in `kubectl describe`
            "involvedObject": {"apiVersion": ref["apiVersion"], "kind": ref["kind"], **meta},
            "firstTimestamp": now,
            "lastTimestamp": now,
        }
        await self._call(
            self._core.create_namespaced_event(meta["namespace"], cast(Any, body)), "posting an Event"
        )

    # ---- resync -------------------------------------------------------------------------------------

    async def list_cluster(self) -> ClusterState:
        """Every SpendPolicy, valid SpendBudget and valid VaultKey not being deleted, in the operator's
        namespaces."""
        policies: dict[str, PolicyLookup] = {}
        for obj in await self._list("spendpolicies"):
            meta = obj.get("metadata", {})
            if not meta.get("deletionTimestamp"):
                policies[f"{meta.get('namespace')}/{meta.get('name')}"] = parse_policy(obj.get("spec"))
        keys = []
        for obj in await self._list("vaultkeys"):
            meta = obj.get("metadata", {})
            if meta.get("deletionTimestamp"):
                continue
            try:
                keys.append(
                    VaultKeyObject.parse(meta["namespace"], meta["name"], meta["uid"], obj.get("spec") or {})
                )
            except (ValueError, KeyError):  # pydantic's ValidationError is a ValueError
                continue  # invalid keys hold no grant; their own handler reported why
        budgets: dict[str, SpendBudgetSpec] = {}
        for obj in await self._list("spendbudgets"):
            meta = obj.get("metadata", {})
            budget = parse_budget(obj.get("spec"))
            if not meta.get("deletionTimestamp") and isinstance(budget, SpendBudgetSpec):
                budgets[f"{meta.get('namespace')}/{meta.get('name')}"] = budget
        return ClusterState(keys, policies, self.namespaces, budgets)

    async def _list(self, plural: str) -> list[dict[str, Any]]:
        if self.namespaces is None:
            found = await self._call(self._custom.list_cluster_custom_object(GROUP, VERSION, plural))
            return list(found.get("items", []))
        items: list[dict[str, Any]] = []
        for ns in sorted(self.namespaces):
            found = await self._call(self._custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural))
            items.extend(found.get("items", []))
        return items

    # ---- plumbing -----------------------------------------------------------------------------------

    async def _get_secret(self, namespace: str, name: str) -> Any:
        return await self._call(
            self._core.read_namespaced_secret(name, namespace),
            f"reading Secret {namespace}/{name}",
            tolerate=404,
        )

    async def _call(self, request: Any, what: str = "Kubernetes API", *, tolerate: int | None = None) -> Any:
        """The request's answer; None when the API answers `tolerate` (a 404 on a read or a delete, a 409
        on a create: the state wanted is there). Any other failure is KubeUnavailable, naming `what`."""
        try:
            return await request
        except ApiException as exc:
            if exc.status == tolerate:
                return None
            raise KubeUnavailable(f"{what}: {exc.status} {exc.reason}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KubeUnavailable(f"{what}: {exc}") from exc


def _owners(secret: Any) -> list[Any]:
    return list(secret.metadata.owner_references or []) if secret.metadata else []


def _decoded(secret: Any, key: str) -> str | None:
    raw = (secret.data or {}).get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def post_event(obj: kopf.Body | Mapping[str, Any], event: Transition) -> None:
    """Queue a Kubernetes Event about `obj` (a body, or just apiVersion, kind and metadata); kopf posts it."""
    body = obj if isinstance(obj, kopf.Body) else kopf.Body(cast(kopf.RawBody, dict(obj)))
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def object_ref(kind: str, namespace: str, name: str, uid: str) -> dict[str, Any]:
    """Enough of an object for an Event about it when its body is not at hand."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "metadata": {"namespace": namespace, "name": name, "uid": uid},
    }
