"""The deployment files: Kubernetes manifests against the Kubernetes schemas, the KServe
InferenceService by its documented fields, the Ray Serve configs by Ray's own schema.

kubernetes-validate ships the schemas (no cluster, no network); ``strict`` rejects unknown
fields, so a misspelt key fails here rather than being dropped silently by the API server.
Ray's ``ServeDeploySchema`` accepts unknown keys (forward compatibility), so the Serve configs
are also checked for keys its models do not know.
"""

from __future__ import annotations

import importlib
import re
import types
import typing
from pathlib import Path

import kubernetes_validate
import pydantic
import pytest
import yaml
from ray.serve import Application
from ray.serve.schema import ServeDeploySchema

from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KSERVE = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
RAY_CONFIGS = sorted((ROOT / "deploy" / "ray").glob("*.yaml"))
# the newest schemas kubernetes-validate ships, and the oldest Kubernetes still in wide use
K8S_VERSIONS = [kubernetes_validate.latest_version(), "1.30.0"]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RUN_AS = 10001  # the Dockerfile's USER


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> dict[str, dict]:
    """Every object in deploy/k8s by kind (one of each kind)."""
    found: dict[str, dict] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in documents(path):
            assert doc["kind"] not in found, f"two {doc['kind']} objects in deploy/k8s"
            found[doc["kind"]] = doc
    return found


def app_paths() -> set[str]:
    """The paths the service really serves (the app's OpenAPI schema; no model is loaded)."""
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    return set(create_app(Settings(**defaults)).openapi()["paths"])


def no_registry(image: str) -> bool:
    """``name:tag`` with no registry host (no ``host.domain/`` or ``host:port/`` prefix)."""
    return "/" not in image and ":" in image


# --- Kubernetes -------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_k8s_manifest_is_valid_against_the_kubernetes_schemas(path, version):
    docs = documents(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        assert DNS_LABEL.match(doc["metadata"]["name"])
        assert "namespace" not in doc["metadata"], "the namespace is kubectl's -n, not the file's"


def test_the_k8s_directory_has_each_part_of_the_deployment():
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret"} <= k8s_objects().keys()


def test_the_deployment_runs_the_image_unprivileged_with_probes_resources_and_model():
    objects = k8s_objects()
    deployment = objects["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == RUN_AS
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert no_registry(container["image"]), container["image"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == RUN_AS
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]

    (port,) = container["ports"]
    assert port["containerPort"] == 8000
    paths = app_paths()
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in paths
        assert probe["port"] in (port["name"], port["containerPort"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in paths

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()

    env = {item["name"]: item for item in container["env"]}
    model_path = Path(env["MODEL_PATH"]["value"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    model_mount = mounts[str(model_path.parent)]
    assert model_mount["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert model_mount["name"] in volumes
    # every variable the service reads is a real setting (a typo would be silently ignored)
    unknown = {name for name in env if name.lower() not in Settings.model_fields}
    assert unknown <= {"MPLCONFIGDIR"}, unknown
    writable = {path for path, mount in mounts.items() if not mount.get("readOnly")}
    assert "/tmp" in writable  # the only writable place with a read-only root filesystem

    secret = objects["Secret"]
    key_ref = env["API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert key_ref["name"] == secret["metadata"]["name"]
    assert key_ref["key"] in secret.get("stringData", {}) | secret.get("data", {})


def test_the_service_and_the_autoscaler_point_at_the_deployment():
    objects = k8s_objects()
    deployment, service, hpa = (
        objects[k] for k in ("Deployment", "Service", "HorizontalPodAutoscaler")
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"]
                  for p in c["ports"]}  # fmt: skip
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


# --- KServe -----------------------------------------------------------------------------

# InferenceService v1beta1 PredictorSpec: a Kubernetes PodSpec plus these component fields
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher",
    "labels", "annotations", "deploymentStrategy", "autoScaling", "workerSpec",
    "model", "storageUri", "storage",
}  # fmt: skip


def test_the_inference_service_has_kserves_documented_fields():
    (isvc,) = documents(KSERVE)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert DNS_LABEL.match(isvc["metadata"]["name"])
    annotations = isvc["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] in app_paths()

    predictor = isvc["spec"]["predictor"]
    assert isinstance(predictor["minReplicas"], int) and isinstance(predictor["maxReplicas"], int)
    assert 0 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert no_registry(container["image"]), container["image"]
    assert [p["containerPort"] for p in container["ports"]] == [8000]
    ready = container["readinessProbe"]["httpGet"]
    assert ready["path"] == "/v2/health/ready"
    assert ready["port"] == 8000
    assert ready["path"] in app_paths()
    env = {item["name"]: item for item in container["env"]}
    assert env["MODEL_PATH"]["value"].startswith("/mnt/models/")
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_inference_services_pod_part_is_a_valid_kubernetes_pod_spec(version):
    (isvc,) = documents(KSERVE)
    pod_spec = {k: v for k, v in isvc["spec"]["predictor"].items()
                if k not in KSERVE_COMPONENT_FIELDS}  # fmt: skip
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod_spec}
    kubernetes_validate.validate(pod, version, strict=True)


# --- Ray Serve --------------------------------------------------------------------------


def unknown_keys(model: type[pydantic.BaseModel], data: object, where: str = "") -> list[str]:
    """Keys in ``data`` that ``model`` (recursively, through nested models) has no field for."""
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{where}{key}")
            continue
        for inner in nested_models(field.annotation):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                suffix = f"[{i}]" if isinstance(value, list) else ""
                found += unknown_keys(inner, item, f"{where}{key}{suffix}.")
    return found


def nested_models(annotation: object) -> list[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in nested_models(arg)]
    return []


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=lambda p: p.name)
def test_the_serve_config_parses_with_rays_schema_and_its_import_path_builds(path):
    raw = yaml.safe_load(path.read_text())
    config = ServeDeploySchema.model_validate(raw)
    assert unknown_keys(ServeDeploySchema, raw) == []
    (app,) = config.applications
    assert app.route_prefix == "/"

    module_name, _, attr = app.import_path.partition(":")
    builder = getattr(importlib.import_module(module_name), attr)
    application = builder(app.args)
    assert isinstance(application, Application)
    ingress_name = application._bound_deployment.name  # what `deployments[].name` must match
    env = app.runtime_env["env_vars"]
    assert all(isinstance(value, str) for value in env.values()), "env values must be strings"
    Settings(**{key.lower(): value for key, value in env.items()})  # valid settings
    assert {key.lower() for key in env} <= Settings.model_fields.keys()

    (deployment,) = app.deployments
    assert deployment.name == ingress_name
    auto = deployment.autoscaling_config
    assert 1 <= auto["min_replicas"] <= auto["max_replicas"]
    assert auto["target_ongoing_requests"] <= deployment.max_ongoing_requests
    options = deployment.ray_actor_options
    assert options.num_cpus >= 1
    if env["DEVICE"].startswith("cuda"):
        assert options.num_gpus == 1
    else:
        assert not options.num_gpus


def test_there_is_a_cpu_and_a_gpu_serve_config():
    devices = {
        yaml.safe_load(path.read_text())["applications"][0]["runtime_env"]["env_vars"]["DEVICE"]
        for path in RAY_CONFIGS
    }
    assert devices == {"cpu", "cuda"}


def test_app_builder_refuses_unknown_or_invalid_settings():
    from service.ray_serve import app_builder

    with pytest.raises(ValueError, match="unknown setting"):
        app_builder({"modle_path": "x.pth"})
    with pytest.raises(pydantic.ValidationError):
        app_builder({"batch_max_size": "0"})
