"""deploy/kubernetes/ checked structurally (no cluster here): the GPU, the probes, the Service against the
container's ports, the init container against docker-compose's `engine`, and the autoscaler's query against
the metrics a real Triton 2.51 serves (the session's embedded server)."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from matting import contract
from matting.paths import MODEL_REPOSITORY, PROJECT_ROOT

KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
TRITON_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization) -> dict[str, dict]:
    """Every object of the kustomization's resources, by kind (one of each here)."""
    found = [document for resource in kustomization["resources"]
             for document in yaml.safe_load_all((KUBERNETES / resource).read_text()) if document]
    by_kind = {document["kind"]: document for document in found}
    assert len(by_kind) == len(found), "one object of each kind"
    return by_kind


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def pod(objects) -> dict:
    return objects["Deployment"]["spec"]["template"]


@pytest.fixture(scope="module")
def triton_container(pod) -> dict:
    [container] = pod["spec"]["containers"]
    return container


@pytest.fixture(scope="module")
def engine_container(pod) -> dict:
    [container] = pod["spec"]["initContainers"]
    return container


def container_port(container: dict, port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) as the container's port number."""
    if isinstance(port, int):
        return port
    [number] = [entry["containerPort"] for entry in container["ports"] if entry["name"] == port]
    return number


def test_kustomization_lists_every_manifest(kustomization, objects):
    assert set(kustomization["resources"]) == {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(objects) == {"Namespace", "Deployment", "Service", "ServiceMonitor", "ScaledObject"}
    assert objects["Namespace"]["metadata"]["name"] == kustomization["namespace"]
    [image] = kustomization["images"]
    for container in [*objects["Deployment"]["spec"]["template"]["spec"]["initContainers"],
                      *objects["Deployment"]["spec"]["template"]["spec"]["containers"]]:
        assert container["image"].split(":")[0] == image["name"], "the image is patched through `images`"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_into_the_namespace_with_the_image(kustomization):
    rendered = subprocess.run(["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, check=True).stdout
    documents = list(yaml.safe_load_all(rendered))
    assert len(documents) == 5
    namespace = kustomization["namespace"]
    assert all(document["metadata"].get("namespace") == namespace for document in documents if document["kind"] != "Namespace")
    [deployment] = [document for document in documents if document["kind"] == "Deployment"]
    [image] = kustomization["images"]
    spec = deployment["spec"]["template"]["spec"]
    assert {container["image"] for container in spec["initContainers"] + spec["containers"]} == {f"{image['newName']}:{image['newTag']}"}


def test_triton_and_its_plan_builder_get_a_gpu(triton_container, engine_container):
    for container in (triton_container, engine_container):
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1, container["name"]


def test_init_container_builds_the_plan_as_compose_engine_does(engine_container, compose):
    # `args` keeps the image's entrypoint, as compose's `command` does.
    assert "command" not in engine_container and engine_container["args"] == compose["engine"]["command"]
    environment = {entry["name"]: entry["value"] for entry in engine_container["env"]}
    assert environment == compose["engine"]["environment"]
    mounts = {mount["mountPath"]: mount["name"] for mount in engine_container["volumeMounts"]}
    assert {f"{name}:{path}" for path, name in mounts.items()} == set(compose["engine"]["volumes"])


def test_triton_serves_the_built_repository_with_shared_memory(triton_container, pod, compose):
    assert "command" not in triton_container and triton_container["args"] == compose["triton"]["command"]
    assert "--model-repository=/models" in " ".join(triton_container["args"])
    mounts = {mount["mountPath"]: mount["name"] for mount in triton_container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert mounts["/models"] == "models" and "emptyDir" in volumes["models"]
    shm = volumes[mounts["/dev/shm"]]["emptyDir"]
    size = re.fullmatch(r"(\d+)(Gi|Mi)", shm["sizeLimit"])
    assert shm["medium"] == "Memory" and size and int(size.group(1)) * (1024 if size.group(2) == "Gi" else 1) >= 1024


def test_triton_reads_its_admin_key_from_a_secret_that_is_not_committed(triton_container, pod, objects):
    """The args are compose's (test above), whose key handling tests/deploy/test_compose.py runs: the file they
    read is the Secret's key `key`, mounted where compose puts its secret."""
    mounts = {mount["mountPath"]: mount for mount in triton_container["volumeMounts"]}
    assert mounts["/run/secrets"]["readOnly"] is True
    [volume] = [volume for volume in pod["spec"]["volumes"] if volume["name"] == mounts["/run/secrets"]["name"]]
    assert volume["secret"]["secretName"] == "triton-admin-key"
    assert volume["secret"]["items"] == [{"key": "key", "path": "triton_admin_key"}]
    assert volume["secret"]["defaultMode"] == 0o400
    assert "Secret" not in objects, "the key's value is never in the repository"
    assert pod["spec"]["automountServiceAccountToken"] is False, "nothing else is mounted under /run/secrets"


def test_container_declares_triton_ports(triton_container, compose):
    assert {entry["name"]: entry["containerPort"] for entry in triton_container["ports"]} == TRITON_PORTS
    published = {int(port.split(":")[-1]) for port in compose["triton"]["ports"]}
    assert published == set(TRITON_PORTS.values())


@pytest.mark.parametrize("probe, path", [("startupProbe", "/v2/health/ready"), ("readinessProbe", "/v2/health/ready"),
                                         ("livenessProbe", "/v2/health/live")])
def test_probes_ask_triton_health_endpoints_on_the_http_port(triton_container, probe, path):
    check = triton_container[probe]["httpGet"]
    assert check["path"] == path and container_port(triton_container, check["port"]) == TRITON_PORTS["http"]


def test_startup_probe_allows_minutes_for_loading(triton_container):
    startup = triton_container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_service_exposes_every_container_port_of_the_pods_it_selects(objects, pod, triton_container):
    deployment, service = objects["Deployment"], objects["Service"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    exposed = {port["name"]: (port["port"], container_port(triton_container, port["targetPort"])) for port in service["spec"]["ports"]}
    assert exposed == {name: (number, number) for name, number in TRITON_PORTS.items()}


def test_prometheus_scrapes_the_metrics_port(objects):
    monitor, service = objects["ServiceMonitor"], objects["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint.get("path", "/metrics") == "/metrics"


def test_autoscaler_targets_the_deployment_on_queue_time(objects, kustomization):
    scaled = objects["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == objects["Deployment"]["metadata"]["name"]
    assert scaled["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    assert "replicas" not in objects["Deployment"]["spec"], "the autoscaler owns the replica count"
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "Value", "a per-request average is not divided by replicas"
    assert float(trigger["metadata"]["threshold"]) > 2000, "µs, above the network's 2 ms batching delay"
    selectors = query_selectors(trigger["metadata"]["query"])
    assert [name for name, _ in selectors] == ["nv_inference_queue_duration_us", "nv_inference_request_success"]
    for _, matchers in selectors:
        assert ("namespace", "=", kustomization["namespace"]) in matchers, "the query must follow the namespace"


def test_autoscaler_query_selects_triton_series_steps_over_ensembles(objects, triton):
    """Against a real Triton 2.51: the numerator's series are the queue times of every step (the ensemble's
    own queue time is ~0), the denominator's the requests of the ensembles."""
    with urllib.request.urlopen(triton.metrics_url, timeout=10) as response:
        series = parse_metrics(response.read().decode())
    ensembles = {path.parent.name for path in MODEL_REPOSITORY.glob("*/config.pbtxt")
                 if re.search(r'^platform:\s*"ensemble"', path.read_text(), re.MULTILINE)}
    # The video stream is neither: its frames wait in the networks' queues, which are counted.
    steps = {path.parent.name for path in MODEL_REPOSITORY.glob("*/config.pbtxt")} - ensembles - {contract.STREAM}
    assert "matting" in ensembles and {"preprocess", "postprocess"} <= steps
    [trigger] = objects["ScaledObject"]["spec"]["triggers"]
    (queue, queue_matchers), (requests, request_matchers) = query_selectors(trigger["metadata"]["query"])

    def selected_models(name, matchers):
        # `namespace` is added by Prometheus when it scrapes, not served by Triton.
        served = [labels for metric, labels in series if metric == name]
        assert served, f"Triton serves no {name}"
        return {labels["model"] for labels in served
                if all(matches(labels.get(label, ""), op, value) for label, op, value in matchers if label != "namespace")}

    assert selected_models(queue, queue_matchers) == steps
    assert selected_models(requests, request_matchers) == ensembles | {contract.STREAM}  # a streamed frame is a request


def query_selectors(query: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The metric selectors of a PromQL query: (name, [(label, operator, value)]), in order."""
    return [(name, re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', body))
            for name, body in re.findall(r"([a-zA-Z_:][\w:]*)\{([^}]*)\}", query)]


def matches(actual: str, op: str, value: str) -> bool:
    equal = re.fullmatch(value, actual) is not None if "~" in op else actual == value
    return equal if op in ("=", "=~") else not equal


def parse_metrics(text: str) -> list[tuple[str, dict[str, str]]]:
    """Prometheus text format: (metric name, labels) of every sample."""
    samples = []
    for line in text.splitlines():
        found = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s", line)
        if found and not line.startswith("#"):
            samples.append((found.group(1), dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(2) or ""))))
    return samples
