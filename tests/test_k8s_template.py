"""The Kubernetes base job template of the `gpu` pool against the schema prefect-kubernetes generates.

The template (deployments/kubernetes-gpu-job-template.json) must keep every variable the
Kubernetes worker declares, with its schema, pass the server's base-job-template validation, and
render to a Job that requests the GPUs and mounts the shared storage root at the path the parent
flows pass as ``storage_root``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

kubernetes_worker = pytest.importorskip("prefect_kubernetes.worker")

TEMPLATE = Path(__file__).resolve().parents[1] / "deployments" / "kubernetes-gpu-job-template.json"
OURS = {"gpu_count", "storage_claim", "storage_root"}


def _template() -> dict:
    return json.loads(TEMPLATE.read_text())


def test_template_keeps_the_generated_variables_and_passes_server_validation() -> None:
    from prefect.server.schemas.actions import WorkPoolCreate
    from prefect.utilities.schema_tools import validate

    template, generated = _template(), kubernetes_worker.KubernetesWorker.get_default_base_job_template()
    ours, theirs = template["variables"], generated["variables"]
    assert set(ours["properties"]) == set(theirs["properties"]) | OURS
    for name, schema in theirs["properties"].items():  # same types and constraints; our defaults may differ
        strip = {"default", "description"}
        assert {k: v for k, v in ours["properties"][name].items() if k not in strip} == \
               {k: v for k, v in schema.items() if k not in strip}, name
    assert ours["definitions"] == theirs["definitions"]
    assert set(template["job_configuration"]) == set(generated["job_configuration"])
    WorkPoolCreate(name="gpu", type="kubernetes", base_job_template=template)  # placeholders all declared
    defaults = {k: v["default"] for k, v in ours["properties"].items() if "default" in v}
    validate(defaults, ours, raise_on_error=True)


def test_rendered_job_requests_gpus_and_mounts_the_storage_root(prefect_harness) -> None:
    configuration = kubernetes_worker.KubernetesWorkerJobConfiguration
    values = {"image": "registry.example/relay:1", "gpu_count": 2, "storage_root": "/data/relay"}
    job = asyncio.run(configuration.from_template_and_values(_template(), values)).job_manifest
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/relay:1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["volumeMounts"] == [{"name": "relay-storage", "mountPath": "/data/relay"}]
    assert pod["volumes"] == [{"name": "relay-storage", "persistentVolumeClaim": {"claimName": "relay-storage"}}]
