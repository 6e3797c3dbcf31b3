"""Cross-file checks of deploy/ that no schema can express (run by deploy/validate.sh).

Schemas check each file on its own; this checks that the files agree with each other: names
referenced across manifests exist, the farm configs carry the upstreams of
examples/mage-os-mirror.toml, the compose services point at each other, the image's user is the
one the pods run as. Prints one line per problem and exits 1 if there is any.

Usage: check_consistency.py REPO_ROOT
"""

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

try:
    import tomllib
except ImportError:  # Python < 3.11; check-jsonschema pulls in tomli there
    import tomli as tomllib

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def embedded_farm_toml(configmap_path):
    """The farm.toml text of the farm-config ConfigMap."""
    for doc in load_yaml_docs(configmap_path):
        if doc.get("kind") == "ConfigMap":
            return doc["data"]["farm.toml"]
    raise SystemExit(f"{configmap_path}: no ConfigMap")


def check_farm_config(where, config, reference_upstreams):
    if config.get("upstreams") != reference_upstreams:
        problem(where, "[[upstreams]] differ from examples/mage-os-mirror.toml (copy them verbatim)")
    if "queue" not in config:
        problem(where, "no [queue] section: the farm would run in embedded mode")
    if config.get("storage", {}).get("kind") != "s3":
        problem(where, '[storage] kind must be "s3" for the distributed deployment')
    for key in ("access_key_id", "secret_access_key"):
        if key in config.get("storage", {}):
            problem(where, f"storage.{key} is a secret: pass AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY instead")
    if "url" in config.get("queue", {}):
        problem(where, "queue.url holds the broker password: pass it as FARM_QUEUE__URL instead")


def check_compose(deploy, compose, farm):
    where = "compose.yaml"
    services = compose.get("services", {})
    volumes = compose.get("volumes") or {}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}) or {}:
            if dependency not in services:
                problem(where, f"service {name} depends on unknown service {dependency}")
        build = service.get("build")
        if build:
            context = (deploy / build.get("context", ".")).resolve()
            if not context.is_dir():
                problem(where, f"service {name}: build context {context} does not exist")
            elif not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problem(where, f"service {name}: dockerfile {build.get('dockerfile')} not found in {context}")
        for mount in service.get("volumes", []) or []:
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                if not (deploy / source).exists():
                    problem(where, f"service {name}: bind-mount source {source} does not exist")
            elif source not in volumes:
                problem(where, f"service {name}: named volume {source} is not declared under volumes:")
    worker = services.get("worker", {})
    for key in ("container_name", "ports"):
        if key in worker:
            problem(where, f"worker must not set {key} (breaks `--scale worker=N`)")
    for name in ("worker", "coordinator"):
        service = services.get(name, {})
        mounts = service.get("volumes", []) or []
        if not any(m.startswith("./farm.compose.toml:/etc/farm/farm.toml") for m in mounts):
            problem(where, f"{name} must mount ./farm.compose.toml at /etc/farm/farm.toml")
        if "/etc/farm/farm.toml" not in (service.get("command") or []):
            problem(where, f"{name} command must pass --config /etc/farm/farm.toml")
    if services.get("coordinator", {}).get("restart") != "no":
        problem(where, 'coordinator must have restart: "no" (one-shot build)')

    # The services must agree on host names, credentials and the bucket.
    env = worker.get("environment", {}) or {}
    queue_url = urlsplit(env.get("FARM_QUEUE__URL", ""))
    if queue_url.hostname not in services:
        problem(where, f"FARM_QUEUE__URL host {queue_url.hostname!r} is not a service")
    rabbit_env = services.get("rabbitmq", {}).get("environment", {}) or {}
    if (queue_url.username, queue_url.password) != (
        rabbit_env.get("RABBITMQ_DEFAULT_USER"),
        rabbit_env.get("RABBITMQ_DEFAULT_PASS"),
    ):
        problem(where, "FARM_QUEUE__URL credentials differ from RABBITMQ_DEFAULT_USER/PASS")
    minio_env = services.get("minio", {}).get("environment", {}) or {}
    if (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) != (
        minio_env.get("MINIO_ROOT_USER"),
        minio_env.get("MINIO_ROOT_PASSWORD"),
    ):
        problem(where, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY differ from the MinIO root user")
    storage = farm.get("storage", {})
    endpoint_host = urlsplit(storage.get("endpoint", "")).hostname
    if endpoint_host not in services:
        problem("farm.compose.toml", f"storage.endpoint host {endpoint_host!r} is not a compose service")
    init_script = "\n".join(services.get("minio-init", {}).get("command", []) or [])
    bucket = storage.get("bucket")
    if f"mc mb --ignore-existing farm/{bucket}" not in init_script:
        problem(where, f"minio-init does not create bucket {bucket!r} of farm.compose.toml")
    if f"mc anonymous set download farm/{bucket}" not in init_script:
        problem(where, f"minio-init does not allow anonymous download of bucket {bucket!r}")
    base_url = farm.get("repository", {}).get("base_url", "")
    if not base_url.rstrip("/").endswith(f":9000/{bucket}"):
        problem("farm.compose.toml", f"repository.base_url {base_url} is not the MinIO URL of bucket {bucket}")


def pod_specs(objects):
    """(object name, pod spec) of every Deployment and CronJob."""
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj["metadata"]["name"], obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def check_k8s(repo, k8s_dir, farm):
    kustomization = load_yaml_docs(k8s_dir / "kustomization.yaml")[0]
    namespace = kustomization.get("namespace")
    listed = kustomization.get("resources", [])
    present = sorted(p.name for p in k8s_dir.glob("*.yaml") if p.name not in ("kustomization.yaml",))
    template_files = {"secrets.example.yaml"}
    for name in listed:
        if not (k8s_dir / name).is_file():
            problem("kustomization.yaml", f"resource {name} does not exist")
    for name in present:
        if name not in listed and name not in template_files:
            problem("kustomization.yaml", f"{name} is not listed in resources")
    for name in template_files & set(listed):
        problem("kustomization.yaml", f"{name} is a template with placeholders and must not be listed")

    objects = []
    for name in present:
        for doc in load_yaml_docs(k8s_dir / name):
            doc["_file"] = name
            objects.append(doc)
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
        obj_namespace = obj["metadata"]["name"] if obj["kind"] == "Namespace" else obj["metadata"].get("namespace")
        if obj_namespace != namespace:
            problem(obj["_file"], f"{obj['kind']}/{obj['metadata']['name']} is not in namespace {namespace}")

    secrets = {
        name: set((obj.get("stringData") or {}) | (obj.get("data") or {}))
        for name, obj in by_kind.get("Secret", {}).items()
    }
    configmaps = {name: set(obj.get("data") or {}) for name, obj in by_kind.get("ConfigMap", {}).items()}

    # The user the image runs as (deploy/Dockerfile) must be the one the pods require.
    dockerfile = (repo / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    uid_match = re.search(r"useradd [^\n]*--uid (\d+)", dockerfile)
    image_uid = int(uid_match.group(1)) if uid_match else None
    cache_dir = farm.get("build", {}).get("cache_dir", "")

    image_names = {image["name"] for image in kustomization.get("images", [])}
    for owner, spec in pod_specs(objects):
        where = f"{owner}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        security = spec.get("securityContext", {})
        if security.get("runAsUser") != image_uid:
            problem(where, f"runAsUser {security.get('runAsUser')} differs from the Dockerfile user {image_uid}")
        for volume in volumes.values():
            if "configMap" in volume:
                cm = volume["configMap"]["name"]
                if cm not in configmaps:
                    problem(where, f"volume {volume['name']}: ConfigMap {cm} is not defined")
                elif "farm.toml" not in configmaps[cm]:
                    problem(where, f"ConfigMap {cm} has no farm.toml")
        for container in spec.get("containers", []):
            cname = f"{where}/{container['name']}"
            if container.get("image") not in image_names:
                problem(cname, f"image {container.get('image')} is not set by kustomization.yaml images:")
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            for mount in mounts.values():
                if mount["name"] not in volumes:
                    problem(cname, f"volumeMount {mount['name']} has no volume")
            if container.get("command"):
                problem(cname, "use args:, not command: (command: would bypass the image's tini entrypoint)")
            command = container.get("args", [])
            if "--config" not in command:
                problem(cname, "args must pass --config <file>")
            else:
                config_path = command[command.index("--config") + 1]
                config_dir = config_path.rsplit("/", 1)[0]
                mount = mounts.get(config_dir)
                if mount is None or "configMap" not in volumes.get(mount["name"], {}):
                    problem(cname, f"--config {config_path}: no ConfigMap mounted at {config_dir}")
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["key"] not in secrets.get(ref["name"], set()):
                    problem(cname, f"env {env['name']}: secret {ref['name']} key {ref['key']} is not in the template")
            if (container.get("securityContext") or {}).get("readOnlyRootFilesystem"):
                for path in ("/tmp", cache_dir):
                    if not any(
                        (path + "/").startswith(mp.rstrip("/") + "/") and "emptyDir" in volumes.get(m["name"], {})
                        for mp, m in mounts.items()
                    ):
                        problem(cname, f"read-only root filesystem but no emptyDir for {path}")

    for name, deployment in by_kind.get("Deployment", {}).items():
        if "replicas" in deployment["spec"]:
            problem(deployment["_file"], f"Deployment {name} sets replicas; KEDA owns the replica count")
    for name, cronjob in by_kind.get("CronJob", {}).items():
        if cronjob["spec"].get("concurrencyPolicy") != "Forbid":
            problem(cronjob["_file"], f"CronJob {name} must have concurrencyPolicy: Forbid")

    prefix = farm.get("queue", {}).get("prefix", "farm")
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        where = scaled["_file"]
        spec = scaled["spec"]
        target = spec["scaleTargetRef"]
        if target.get("kind", "Deployment") == "Deployment" and target["name"] not in by_kind.get("Deployment", {}):
            problem(where, f"scaleTargetRef {target['name']} is not a Deployment here")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problem(where, "minReplicaCount > maxReplicaCount")
        for trigger in spec["triggers"]:
            auth = (trigger.get("authenticationRef") or {}).get("name")
            if auth and auth not in by_kind.get("TriggerAuthentication", {}):
                problem(where, f"authenticationRef {auth} is not a TriggerAuthentication here")
            if trigger["type"] == "rabbitmq" and trigger["metadata"].get("queueName") != f"{prefix}.jobs":
                problem(where, f"queueName must be {prefix}.jobs (queue.prefix of the ConfigMap's farm.toml)")
    for name, auth in by_kind.get("TriggerAuthentication", {}).items():
        for ref in auth["spec"].get("secretTargetRef", []):
            if ref["key"] not in secrets.get(ref["name"], set()):
                problem(auth["_file"], f"secretTargetRef {ref['name']}/{ref['key']} is not in the secret template")


def main():
    repo = Path(sys.argv[1]).resolve()
    deploy = repo / "deploy"
    k8s_dir = deploy / "k8s"
    with open(repo / "examples" / "mage-os-mirror.toml", "rb") as handle:
        reference_upstreams = tomllib.load(handle)["upstreams"]

    with open(deploy / "farm.compose.toml", "rb") as handle:
        compose_farm = tomllib.load(handle)
    k8s_farm = tomllib.loads(embedded_farm_toml(k8s_dir / "configmap.yaml"))
    check_farm_config("farm.compose.toml", compose_farm, reference_upstreams)
    check_farm_config("k8s/configmap.yaml farm.toml", k8s_farm, reference_upstreams)

    check_compose(deploy, load_yaml_docs(deploy / "compose.yaml")[0], compose_farm)
    check_k8s(repo, k8s_dir, k8s_farm)

    for line in problems:
        print(f"  {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
