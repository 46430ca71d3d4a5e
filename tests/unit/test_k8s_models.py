"""Helpers for the k8s unit tests (YAML/JSON through the official `kubernetes` client models), and their own checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"

#: kind -> model class name in kubernetes.client
MODEL_BY_KIND = {
    "Namespace": "V1Namespace",
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "Pod": "V1Pod",
}

#: Files in k8s/ that are not Kubernetes API objects.
NON_API_FILES = {"kustomization.yaml", "kind-cluster.yaml", "helm/dagster-values.yaml"}


@dataclass
class _Response:
    data: str


def to_model(obj: dict[str, Any], model: str) -> Any:
    """Deserialize a camelCase API object (as in YAML) into the client model ``model``."""
    return kubernetes.client.ApiClient().deserialize(_Response(json.dumps(obj)), model)


def to_api_dict(model_obj: Any) -> Any:
    """The camelCase dict the client would send for ``model_obj``."""
    return kubernetes.client.ApiClient().sanitize_for_serialization(model_obj)


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.rglob("*.yaml") if str(p.relative_to(K8S_DIR)) not in NON_API_FILES)


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_api_objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in manifest_files() for doc in load_docs(path)]


def test_round_trip_exposes_a_misspelt_field():
    doc = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x", "namspace": "typo"}}
    assert to_api_dict(to_model(doc, "V1ServiceAccount")) != doc


def test_round_trip_keeps_a_correct_object():
    doc = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x", "namespace": "ns"}}
    assert to_api_dict(to_model(doc, "V1ServiceAccount")) == doc
