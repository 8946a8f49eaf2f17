#!/usr/bin/env bash
# The Kubernetes counterpart of compose's keys-init (deploy/compose/service_keys.py): makes the agent host's and
# the UI's service keys on the proxy and the UI's cookie secret, and stores them in the Secret
# genailabs-service-keys, which the agent host and the UI mount (their pods wait for it).
# Run it from your machine once the proxy is up, after the first `kubectl apply -k`:
#   deploy/k8s/service-keys.sh              # keeps the Secret if it exists (every later run is a no-op)
#   deploy/k8s/service-keys.sh --rotate     # new keys (the old ones revoked), then the pods restart on them
# NAMESPACE (default genailabs) and KUBECTL (default kubectl) may be set. Keys are made inside a proxy pod with
# `python -m hub.keys` and go from there into the Secret through a private temporary directory: never into a
# command line, and nothing secret is printed.
set -euo pipefail
NAMESPACE=${NAMESPACE:-genailabs}
KUBECTL=${KUBECTL:-kubectl}
SECRET=genailabs-service-keys
k() { "$KUBECTL" -n "$NAMESPACE" "$@"; }

rotate=false
case "${1:-}" in
  "") ;;
  --rotate) rotate=true ;;
  *) echo "usage: $0 [--rotate]" >&2; exit 2 ;;
esac

if ! $rotate && k get secret "$SECRET" >/dev/null 2>&1; then
  echo "service-keys: kept the Secret $SECRET (--rotate makes new keys)"
  exit 0
fi

k rollout status deployment/litellm --timeout=10m >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"

# alias (as under compose and `make up`) -> the file the service reads.
new_key() {
  # An earlier key of the alias cannot be shown again: revoke it (none on the first run).
  k exec deployment/litellm -c litellm -- python -m hub.keys revoke "$1" >/dev/null 2>&1 || true
  (umask 077 && k exec deployment/litellm -c litellm -- python -m hub.keys create --alias "$1" --service \
    2>/dev/null > "$workdir/$2")
  [ -s "$workdir/$2" ] || { echo "service-keys: could not create the key '$1'" >&2; exit 1; }
  echo "service-keys: created the service key '$1'"
}
new_key agent-host agent-host.proxy-key
new_key chat-ui ui.proxy-key
(umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' > "$workdir/ui.cookie-secret")

k create secret generic "$SECRET" \
  --from-file="$workdir/agent-host.proxy-key" --from-file="$workdir/ui.proxy-key" \
  --from-file="$workdir/ui.cookie-secret" --dry-run=client -o yaml | k apply -f - >/dev/null
echo "service-keys: stored them in the Secret $SECRET"

if $rotate; then
  # Settings are read at start: restart what reads the keys.
  k rollout restart deployment/agent-host deployment/ui >/dev/null
  echo "service-keys: restarted agent-host and ui"
fi
