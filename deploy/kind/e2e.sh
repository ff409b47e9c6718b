#!/usr/bin/env bash
# The cluster tier (`make e2e-kind`): a kind cluster, the images built from this checkout, the chart,
# localstripe as Stripe, a role and an agent; then, in the cluster, what the emulator tier proves:
#   1. an agent's call passes and shows in `kubectl get vk`;
#   2. `kubectl delete vk` refuses the next call (401, tollgate_key_revoked or _unknown);
#   3. a pod in a labelled namespace cannot reach Stripe (localstripe, or the internet) directly.
# Needs docker and kind on PATH (helm and kubectl too, or the ones `make test` caches). Not part of
# `make test`. KEEP_CLUSTER=1 leaves the cluster up afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CLUSTER="${CLUSTER:-tollgate-e2e}"
NS=tollgate
AGENTS=agents

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'e2e-kind: FAIL: %s\n' "$*" >&2; exit 1; }

missing=()
for tool in docker kind; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  echo "e2e-kind: ${missing[*]} not found on PATH. This tier runs the chart in a real kind cluster and" >&2
  echo "needs Docker (running) and kind (https://kind.sigs.k8s.io); \`make test\` needs neither." >&2
  exit 2
fi
docker info >/dev/null 2>&1 || { echo "e2e-kind: docker is installed but its daemon does not answer" >&2; exit 2; }

tool_path() {  # helm or kubectl: from PATH, else the copy tests/support/kubetools.py caches
  command -v "$1" && return
  "$ROOT/.venv/bin/python" -c "import sys; sys.path.insert(0, '$ROOT'); from tests.support import kubetools as k; print(k.${1}_binary())"
}
HELM="$(tool_path helm)" || fail "no helm (run \`make test\` once, or install helm)"
KUBECTL="$(tool_path kubectl)" || fail "no kubectl (run \`make test\` once, or install kubectl)"
k() { "$KUBECTL" --context "kind-$CLUSTER" "$@"; }

cleanup() { [[ "${KEEP_CLUSTER:-}" == 1 ]] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "kind cluster $CLUSTER (kindnet enforces NetworkPolicy)"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s

say "images: tollgate:e2e (extauthz/Dockerfile) and tollgate-localstripe:e2e"
docker build -q -f "$ROOT/extauthz/Dockerfile" --target extauthz -t tollgate:e2e "$ROOT"
docker build -q -f "$ROOT/deploy/kind/localstripe.Dockerfile" -t tollgate-localstripe:e2e "$ROOT/deploy/kind"
kind load docker-image --name "$CLUSTER" tollgate:e2e tollgate-localstripe:e2e

say "localstripe as Stripe, then the chart"
k apply -f "$ROOT/deploy/kind/localstripe.yaml"
k -n stripe rollout status deploy/localstripe --timeout=180s
"$HELM" --kube-context "kind-$CLUSTER" upgrade --install tollgate "$ROOT/charts/tollgate" -n "$NS" \
  --create-namespace -f "$ROOT/deploy/kind/values.yaml" --wait --timeout 10m
"$HELM" --kube-context "kind-$CLUSTER" test tollgate -n "$NS" --timeout 5m

say "an agent namespace labelled after install, a role, the real key's Secret"
k create namespace "$AGENTS" --dry-run=client -o yaml | k apply -f -
k label namespace "$AGENTS" tollgate.dev/agents=enabled --overwrite
for _ in $(seq 60); do k -n "$AGENTS" get networkpolicy tollgate-tollgate-agents-egress >/dev/null 2>&1 && break; sleep 1; done
k -n "$AGENTS" get networkpolicy tollgate-tollgate-agents-egress >/dev/null || fail "the operator did not confine $AGENTS"
k -n "$AGENTS" create secret generic stripe-platform-key --from-literal=api-key=sk_test_e2e_kind \
  --dry-run=client -o yaml | k apply -f -
k apply -f "$ROOT/deploy/examples/roles/support-refunds.yaml"
k -n "$AGENTS" wait vk/support-bot --for=jsonpath='{.status.state}'=Ready --timeout=120s

# One agent Pod, labelled as the chart's agentPodLabels, with the vault token mounted as in
# deploy/examples/agent/agent.yaml; `call` runs a request from inside it.
k -n "$AGENTS" apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: agent
  labels: {tollgate.dev/agent: "true"}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: agent
      image: tollgate:e2e
      imagePullPolicy: Never
      command: ["sleep", "infinity"]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}
      resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 200m, memory: 128Mi}}
      volumeMounts: [{name: token, mountPath: /var/run/tollgate, readOnly: true}]
  volumes:
    - name: token
      secret: {secretName: support-bot-vault-token, items: [{key: token, path: token}]}
YAML
k -n "$AGENTS" wait pod/agent --for=condition=Ready --timeout=120s
call() {  # call URL → prints "<status> <x-tollgate-rule>", or "unreachable"
  k -n "$AGENTS" exec agent -- python -c '
import sys, urllib.error, urllib.request
token = open("/var/run/tollgate/token").read().strip()
req = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {token}"})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(r.status, r.headers.get("x-tollgate-rule", "-"))
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("x-tollgate-rule", "-"))
except OSError:
    print("unreachable")
' "$1"
}
GATEWAY="http://tollgate-envoy.$NS.svc.cluster.local:8080/stripe/v1/charges?limit=1"

say "1. a call passes and shows in kubectl get vk"
got="$(call "$GATEWAY")"
[[ "$got" == 200* ]] || fail "the agent's call through Tollgate answered: $got"
for _ in $(seq 30); do
  decision="$(k -n "$AGENTS" get vk support-bot -o jsonpath='{.status.lastDecision.decisionId}')"
  [[ -n "$decision" ]] && break; sleep 1
done
[[ -n "$decision" ]] || fail "the call did not show in the VaultKey's status"
k -n "$AGENTS" get vk support-bot

say "2. kubectl delete vk refuses the next call"
k -n "$AGENTS" delete vk support-bot --wait=true
got="$(call "$GATEWAY")"
[[ "$got" == "401 tollgate_key_revoked" || "$got" == "401 tollgate_key_unknown" ]] \
  || fail "after kubectl delete vk, the next call answered: $got"

say "3. a pod in the labelled namespace cannot reach Stripe directly"
got="$(call "http://localstripe.stripe.svc.cluster.local:8420/v1/charges")"
[[ "$got" == unreachable ]] || fail "the agent reached localstripe around Tollgate: $got"
got="$(call "https://api.stripe.com/v1/charges")"
[[ "$got" == unreachable ]] || fail "the agent reached api.stripe.com around Tollgate: $got"

say "e2e-kind: all three held"
