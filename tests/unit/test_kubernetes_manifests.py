"""deploy/kubernetes: every manifest valid against the Kubernetes schemas (the
kubernetes-validate package, whose JSON schemas ship inside it: no network), the
kustomization rendered, and the pods' probes, ports, env names, mounts and secrets held to
the service's own settings (app/settings.py), the Dockerfile and the ivr_flows/ folder.

The kustomization is rendered twice: by a small renderer here that knows exactly the
kustomize fields the file uses (any other field fails the test, so it cannot drift
silently), and by `kubectl kustomize`; both must give the same resources.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor
from pydantic import SecretStr

from app.api.health import router as health_router
from app.cli import COMMANDS
from app.config.loader import load_config
from app.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
FLOWS = ROOT / "ivr_flows"
# The Kubernetes releases the manifests must be valid for: the oldest still commonly run
# (with PodDisruptionBudget policy/v1, seccompProfile, ttlSecondsAfterFinished GA) and
# the newest whose schemas the package ships.
VERSIONS = ("1.29", major_minor(kubernetes_validate.latest_version()))
# What the small renderer below understands of a kustomization.
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "resources", "configMapGenerator", "images"}
GENERATOR_FIELDS = {"name", "files", "envs"}
# Placeholders for the Secret's values when the settings are built from a pod's env.
SECRET_VALUES = {
    "database-url": "postgresql://acd:pw@postgres:5432/acd",
    "redis-url": "redis://redis:6379/0",
    "ami-secret": "ami-secret",
    "caller-hash-key": "0123456789abcdef0123",
    "metrics-token": "metrics-token",
    "caller-hash-key-previous": "the-old-key-0123456789",
}


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def parse_env_file(text: str) -> dict[str, str]:
    """A kustomize `envs:` file: KEY=VALUE lines; blank lines and `#` comments skipped."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key, f"line {number}: not KEY=VALUE: {line!r}"
        assert key not in out, f"line {number}: {key} twice"
        out[key] = value
    return out


def kustomization() -> dict[str, Any]:
    spec = yaml.safe_load((KUBE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert isinstance(spec, dict)
    return spec


def render(spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The kustomization's resources, its generated ConfigMaps (without kustomize's hash
    suffix) and its image replacements."""
    spec = kustomization() if spec is None else spec
    unknown = set(spec) - KUSTOMIZE_FIELDS
    assert not unknown, f"the test's renderer does not know {unknown}: teach it first"
    assert spec["kind"] == "Kustomization"
    docs: list[dict[str, Any]] = []
    for resource in spec["resources"]:
        text = (KUBE / resource).read_text(encoding="utf-8")
        docs += [d for d in yaml.safe_load_all(text) if d]
    for gen in spec.get("configMapGenerator", []):
        assert set(gen) <= GENERATOR_FIELDS, set(gen) - GENERATOR_FIELDS
        data: dict[str, str] = {}
        for name in gen.get("files", []):
            path = KUBE / name
            assert path.name not in data, path.name
            data[path.name] = path.read_text(encoding="utf-8")
        for name in gen.get("envs", []):
            data.update(parse_env_file((KUBE / name).read_text(encoding="utf-8")))
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": gen["name"]},
                "data": data,
            }
        )
    images = {i["name"]: i for i in spec.get("images", [])}
    for doc in docs:
        for container in containers(doc):
            image = images.get(container["image"])
            if image is not None:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render()


# --------------------------------------------------------------------------------------
# Schemas and the rendering
# --------------------------------------------------------------------------------------


def test_the_schemas_ship_in_the_package() -> None:
    """Offline in CI after pip install: the package holds the schemas of the versions."""
    import importlib.resources

    base = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    for version in VERSIONS:
        folder = base / f"v{version}.0-local-strict"
        assert (folder / "deployment-apps-v1.json").is_file(), folder


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    docs: list[dict[str, Any]], version: str
) -> None:
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["ConfigMap", "ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Service", "Service"]
    )
    for doc in docs:
        # strict: a field the schema does not have (a typo) is an error, not ignored.
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_a_misspelt_or_mistyped_field(docs: list[dict[str, Any]]) -> None:
    deployment = find(docs, "Deployment", "acd")
    typo = copy.deepcopy(deployment)
    probe = typo["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, VERSIONS[-1], strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, VERSIONS[-1], strict=True)


def test_kubectl_kustomize_renders_the_same_resources(docs: list[dict[str, Any]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not installed: it renders deploy/kubernetes (any kubectl >= 1.21 has "
            "kustomize built in)",
            pytrace=False,
        )
    result = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(KUBE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr  # no deprecation warnings either
    text = result.stdout
    # Generated ConfigMaps get a content hash suffix, and every reference follows it.
    for gen in kustomization()["configMapGenerator"]:
        suffixed = re.findall(rf"\b{re.escape(gen['name'])}-[a-z0-9]{{10}}\b", text)
        assert suffixed, gen["name"]
        text = re.sub(rf"\b{re.escape(gen['name'])}-[a-z0-9]{{10}}\b", gen["name"], text)
    theirs = [d for d in yaml.safe_load_all(text) if d]

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return (d["kind"], d["metadata"]["name"])

    assert sorted(map(key, theirs)) == sorted(map(key, docs))
    ours = {key(d): d for d in docs}
    for doc in theirs:
        assert json.dumps(doc, sort_keys=True) == json.dumps(ours[key(doc)], sort_keys=True), key(
            doc
        )


def test_the_menu_files_are_all_in_the_configmap(docs: list[dict[str, Any]]) -> None:
    """configMapGenerator lists files one by one: a new file in ivr_flows/ must be added."""
    flows = find(docs, "ConfigMap", "acd-ivr-flows")["data"]
    on_disk = {p.name for p in [*FLOWS.glob("*.yaml"), *FLOWS.glob("*.yml")]}
    assert set(flows) == on_disk
    # The folder as the pod sees it loads without an error (and has a menu).
    assert load_config(FLOWS).flows
    # A ConfigMap holds at most 1 MiB.
    assert sum(len(v.encode()) for v in flows.values()) < 900_000


def test_the_image_tag_is_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    (image,) = kustomization()["images"]
    assert image["name"] == "acd" and image["newTag"] == version


# --------------------------------------------------------------------------------------
# Held to the service's settings
# --------------------------------------------------------------------------------------

SETTING_NAMES = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
SECRET_SETTINGS = {
    ENV_PREFIX + name.upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in typing.get_args(field.annotation) or field.annotation is SecretStr
}
# Settings whose values are secret though their type is not (credentials in the URL).
CREDENTIAL_URLS = {"ACD_DATABASE_URL", "ACD_REDIS_URL"}


def container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets: envFrom ConfigMaps, then env (values, or the
    placeholder of a secretKeyRef's key). Fails on a name the service does not read."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, source
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "acd-secrets", item
            env[item["name"]] = SECRET_VALUES[ref["key"]]
    return env


def check_env_names(docs: list[dict[str, Any]], container: dict[str, Any]) -> None:
    unknown = set(container_env(docs, container)) - SETTING_NAMES
    assert not unknown, f"{container['name']}: the service reads no {sorted(unknown)}"


def settings_of(
    docs: list[dict[str, Any]], container: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The service's settings as the container would load them, from its env alone."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in container_env(docs, container).items():
        monkeypatch.setenv(name, value)
    return load_settings(_env_file=None)


def service_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = find(docs, "Deployment", "acd")["spec"]["template"]["spec"]["containers"]
    return container


def test_every_env_name_is_a_setting_of_the_service(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        for container in containers(doc):
            check_env_names(docs, container)


def test_a_wrong_env_name_fails(docs: list[dict[str, Any]]) -> None:
    """The service ignores unknown ACD_* names (pydantic extra="ignore"): a misspelt one
    would silently fall back to the default, so the check above must catch it."""
    broken = copy.deepcopy(docs)
    settings = find(broken, "ConfigMap", "acd-settings")["data"]
    settings["ACD_PBXID"] = settings.pop("ACD_PBX_ID")
    with pytest.raises(AssertionError, match="ACD_PBXID"):
        check_env_names(broken, service_container(broken))
    broken = copy.deepcopy(docs)
    env = service_container(broken)["env"]
    env[0]["name"] = "ACD_DATABASE"
    with pytest.raises(AssertionError, match="ACD_DATABASE"):
        check_env_names(broken, service_container(broken))


def test_the_pod_env_loads_as_valid_settings(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(docs, service_container(docs), monkeypatch)
    # Reachable through the Services: listening on every address of the pod.
    assert settings.http_host == "0.0.0.0" and settings.agi_host == "0.0.0.0"
    assert not settings.is_sqlite and settings.redis_url and settings.ami_enabled
    assert settings.caller_hash_key is not None  # else a random key per replica


def test_ports_and_probes_match_the_settings(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = service_container(docs)
    settings = settings_of(docs, container, monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.http_port, "fastagi": settings.agi_port}

    def port_of(probe: dict[str, Any]) -> int:
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else int(port)

    routes = {r.path for r in health_router.routes if "GET" in getattr(r, "methods", ())}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container[kind]
        assert probe["httpGet"]["path"] in routes, kind
        assert port_of(probe) == settings.http_port, kind
    # Prometheus scrapes /metrics on the HTTP port.
    annotations = find(docs, "Deployment", "acd")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.http_port
    assert annotations["prometheus.io/path"] in routes


def test_the_services_reach_the_pods(docs: list[dict[str, Any]]) -> None:
    deployment = find(docs, "Deployment", "acd")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in service_container(docs)["ports"]}
    for name, port_name in (("acd-http", "http"), ("acd-agi", "fastagi")):
        service = find(docs, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items(), name
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == port_name and port_name in ports, name
    pdb = find(docs, "PodDisruptionBudget", "acd")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_two_replicas_and_never_fewer_than_one(docs: list[dict[str, Any]]) -> None:
    deployment = find(docs, "Deployment", "acd")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert find(docs, "PodDisruptionBudget", "acd")["spec"]["minAvailable"] == 1


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_non_root_read_only_with_every_written_path_on_a_volume(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = int(re.search(r"useradd [^\n]*--uid (\d+)", _dockerfile()).group(1))  # type: ignore[union-attr]
    gid = int(re.search(r"groupadd [^\n]*--gid (\d+)", _dockerfile()).group(1))  # type: ignore[union-attr]
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        name = doc["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid, name
        assert pod["runAsGroup"] == gid and pod["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(doc):
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
            for part in ("requests", "limits"):
                assert set(container["resources"][part]) == {"cpu", "memory"}, (name, part)
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name

    # What the service writes lies on an emptyDir: the spill file and matplotlib's cache.
    deployment = find(docs, "Deployment", "acd")
    spec = deployment["spec"]["template"]["spec"]
    container = service_container(docs)
    settings = settings_of(docs, container, monkeypatch)
    volumes = {v["name"]: v for v in spec["volumes"]}
    writable = [
        Path(m["mountPath"])
        for m in container["volumeMounts"]
        if "emptyDir" in volumes[m["name"]] and not m.get("readOnly")
    ]
    mplconfig = re.search(r"MPLCONFIGDIR=(\S+)", _dockerfile()).group(1)  # type: ignore[union-attr]
    for path in (settings.spill_dir, Path(mplconfig), Path("/tmp")):
        assert path.is_absolute() and any(path.is_relative_to(w) for w in writable), path
    # The menu files: the ConfigMap, mounted read-only where ACD_IVR_FLOWS points.
    (flows,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == settings.ivr_flows]
    assert flows["readOnly"] is True
    assert volumes[flows["name"]]["configMap"]["name"] == "acd-ivr-flows"


def test_secrets_are_references_never_values(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert {"ACD_AMI_SECRET", "ACD_CALLER_HASH_KEY", "ACD_METRICS_TOKEN"} <= SECRET_SETTINGS
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            leaked = set(doc["data"]) & (SECRET_SETTINGS | CREDENTIAL_URLS)
            assert not leaked, (doc["metadata"]["name"], leaked)
        for container in containers(doc):
            for item in container.get("env", []):
                if item["name"] in SECRET_SETTINGS | CREDENTIAL_URLS:
                    assert "value" not in item and "secretKeyRef" in item["valueFrom"], item
    # The service's container gets every secret setting the service has.
    names = {e["name"] for e in service_container(docs)["env"]}
    assert names >= SECRET_SETTINGS | CREDENTIAL_URLS
    # ... and the keys are the ones docs/deploy.md tells the operator to create.
    deploy_doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for doc in docs:
        for container in containers(doc):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert f"--from-literal={ref['key']}=" in deploy_doc, ref["key"]
                    optional = ("ACD_METRICS_TOKEN", "ACD_CALLER_HASH_KEY_PREVIOUS")
                    assert ref.get("optional", False) == (item["name"] in optional)


def test_the_migration_is_a_job_and_the_pods_do_not_migrate(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = {c.name for c in COMMANDS}
    job = find(docs, "Job", "acd-migrate")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["acd", "migrate"] and "migrate" in commands
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    # The same image and the same database as the service.
    service = service_container(docs)
    assert migrate["image"] == service["image"]
    assert settings_of(docs, migrate, monkeypatch).database_url == (
        settings_of(docs, service, monkeypatch).database_url
    )
    # Two replicas migrating at once would race: the Deployment's pods only serve.
    assert service["command"] == ["acd", "serve"] and "serve" in commands
    # The apply steps of docs/deploy.md name these resources and the Job's label.
    deploy_doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    component = job["metadata"]["labels"]["app.kubernetes.io/component"]
    assert f"--selector app.kubernetes.io/component={component}" in deploy_doc
    assert f"job/{job['metadata']['name']}" in deploy_doc
    assert f"deployment/{find(docs, 'Deployment', 'acd')['metadata']['name']}" in deploy_doc
    assert "--load-restrictor=LoadRestrictionsNone deploy/kubernetes" in deploy_doc


# --------------------------------------------------------------------------------------
# A centre's second PBX: the overlay deploy/kubernetes-pbx2
# --------------------------------------------------------------------------------------


def kubectl_render(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed: it renders the overlays", pytrace=False)
    result = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def selectors(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, str]]:
    """What each Deployment, Service and PodDisruptionBudget selects."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for d in docs:
        key = (d["kind"], d["metadata"]["name"])
        if d["kind"] == "Service":
            out[key] = d["spec"]["selector"]
        elif d["kind"] in ("Deployment", "PodDisruptionBudget"):
            out[key] = d["spec"]["selector"]["matchLabels"]
    return out


def test_a_second_pbx_is_its_own_deployment_reaching_only_its_own_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = kubectl_render(KUBE)
    second = kubectl_render(ROOT / "deploy" / "kubernetes-pbx2")
    for version in VERSIONS:
        for doc in second:
            kubernetes_validate.validate(doc, version, strict=True)
    # Its own names, no second migration Job.
    kinds = sorted(d["kind"] for d in second)
    assert kinds == sorted(
        ["ConfigMap", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service"]
    )
    assert all("-pbx2" in d["metadata"]["name"] for d in second)
    names = {d["metadata"]["name"] for d in base}
    assert not names & {d["metadata"]["name"] for d in second}
    # Each PBX's Services and budget select its own pods only: the two sets of selectors
    # can never match the same pod (instance pbx1 / pbx2), and each matches its pods.
    for docs, instance in ((base, "pbx1"), (second, "pbx2")):
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        pod = deployment["spec"]["template"]["metadata"]["labels"]
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
        chosen = [
            *selectors(docs).items(),
            (("spread", ""), spread["labelSelector"]["matchLabels"]),
        ]
        for key, wanted in chosen:
            assert wanted.get("app.kubernetes.io/instance") == instance, key
            assert wanted.items() <= pod.items(), key
    # Its own PBX and Asterisk, the rest of the settings shared; valid settings once the
    # operator names both PBXs in ACD_PBXS.
    deployment = next(d for d in second if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = container_env(second, container)
    base_env = container_env(base, service_container(base))
    assert (env["ACD_PBX_ID"], base_env["ACD_PBX_ID"]) == ("pbx2", "pbx1")
    assert env["ACD_AMI_HOST"] != base_env["ACD_AMI_HOST"]
    assert {k: v for k, v in env.items() if k not in ("ACD_PBX_ID", "ACD_AMI_HOST")} == {
        k: v for k, v in base_env.items() if k not in ("ACD_PBX_ID", "ACD_AMI_HOST")
    }
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in {**env, "ACD_PBXS": "pbx1,pbx2"}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert settings.centre_pbxs == ("pbx2", "pbx1") and settings.primary_pbx == "pbx1"
