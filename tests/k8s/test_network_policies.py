"""Who may reach whom under deploy/k8s's NetworkPolicies, worked out from the rendered policies and pod labels."""

import pytest
from manifest_support import (
    OVERLAYS,
    Doc,
    named,
    workloads,
)

# --- who may reach whom ----------------------------------------------------------------------------------------


def pod_labels(docs: list[Doc]) -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"] for doc in workloads(docs)}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present, value = expression["key"] in labels, labels.get(expression["key"])
        operator, values = expression["operator"], expression.get("values", [])
        if (operator, present) in (("Exists", False), ("DoesNotExist", True)):
            return False
        if (operator == "In" and value not in values) or (operator == "NotIn" and value in values):
            return False
    return True


def admits(policies: list[Doc], source: dict[str, str], target: dict[str, str], port: int) -> bool:
    """NetworkPolicy's semantics for ingress within the namespace: denied once any policy selects the target,
    then allowed if one of those policies' rules matches the source pod and the port."""
    selecting = [
        p for p in policies if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], target)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = [peer for peer in rule.get("from", []) if "namespaceSelector" not in peer]  # same namespace
            if rule.get("from") and not any(selects(peer["podSelector"], source) for peer in peers):
                continue
            if not rule.get("ports") or any(p["port"] == port for p in rule["ports"]):
                return True
    return False


# server -> (port, the pods that may open connections to it)
REACHABLE_FROM = {
    "ollama": (11434, {"litellm", "ollama-pull"}),
    "postgres": (5432, {"litellm", "agent-host", "rag-worker", "ui", "accounts-init"}),
    "redis": (6379, {"litellm"}),
    "chroma": (8000, {"agent-host", "rag-worker"}),
    "litellm": (4100, {"agent-host", "ui"}),
    "agent-host": (8000, {"ui"}),
    "ui": (8501, set()),  # the ingress controller only, from its own namespace
    "rag-worker": (8090, set()),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_each_server_be_reached_by_its_clients_only(
    overlay: str, rendered: dict[str, list[Doc]]
) -> None:
    docs = rendered[overlay]
    policies = list(named(docs, "NetworkPolicy").values())
    deny = named(docs, "NetworkPolicy")["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    labels = pod_labels(docs)
    assert set(REACHABLE_FROM) <= set(labels)
    for server, (port, clients) in REACHABLE_FROM.items():
        allowed = {source for source in labels if admits(policies, labels[source], labels[server], port)}
        assert allowed == clients, (server, sorted(allowed))
    ui_rule = named(docs, "NetworkPolicy")["ui"]["spec"]["ingress"][0]["from"][0]
    assert ui_rule["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}


def test_the_policy_model_is_not_vacuous() -> None:
    """admits() as used above: a policy selecting the target denies by default; its rule lets one pod in."""
    policy = {
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 5432}]}],
        }
    }
    assert admits([policy], {"app": "api"}, {"app": "db"}, 5432)
    assert not admits([policy], {"app": "api"}, {"app": "db"}, 22)
    assert not admits([policy], {"app": "web"}, {"app": "db"}, 5432)
    assert admits([policy], {"app": "web"}, {"app": "other"}, 80)
