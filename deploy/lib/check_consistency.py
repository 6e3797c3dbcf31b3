"""Cross-file checks of deploy/ that no schema can express (run by deploy/validate.sh).

Schemas check each file on its own; this checks that the files agree with each other: names
referenced across manifests exist, the farm configs carry upstreams of
examples/mage-os-mirror.toml (verbatim, in its order), the compose services point at each other, the image's user is the
one the pods run as, and the always-on coordinator (`coordinator serve`) is wired consistently:
one replica that never overlaps (the bucket lock), probes and Service on the port serve.listen
names, a grace period above serve.shutdown_grace, never together with the one-shot coordinator
against one bucket. Prints one line per problem and exits 1 if there is any.

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


# Defaults of the [serve] section (shared/src/config.rs, ServeConfig).
SERVE_DEFAULTS = {"listen": "127.0.0.1:8080", "shutdown_grace": "20s"}
# [serve] keys that are secrets: they come from the environment (FARM_SERVE__<KEY>), never a file.
SERVE_SECRETS = ("github_secret", "gitlab_token", "trigger_token")
# Time a stopping coordinator needs beyond serve.shutdown_grace to save the manifest and metadata.
SAVE_MARGIN_SECONDS = 30

DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text):
    """Seconds of "20s", "5m", "1m30s", "2m 30s" (humantime and compose style); None if unparsable."""
    if isinstance(text, (int, float)):
        return float(text)
    text = str(text).strip()
    if not re.fullmatch(r"(\d+(\.\d+)?\s*[a-z]+\s*)+", text):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if any(unit not in DURATION_UNITS for _, unit in parts):
        return None
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


def serve_setting(config, key):
    return config.get("serve", {}).get(key, SERVE_DEFAULTS[key])


def listen_port(config):
    """(host, port) of serve.listen, or (None, None) if it is not host:port."""
    host, _, port = str(serve_setting(config, "listen")).rpartition(":")
    if not host or not port.isdigit():
        return None, None
    return host.strip("[]"), int(port)


def shutdown_grace_seconds(config):
    return parse_duration(serve_setting(config, "shutdown_grace"))


def check_farm_config(where, config, reference_upstreams):
    # Each upstream is one of the example's, copied verbatim, in the example's order (the order
    # decides precedence). A subset: magento2 needs the reference's resource folder mounted.
    by_key = {u.get("key"): u for u in reference_upstreams}
    order = [u.get("key") for u in reference_upstreams]
    upstreams = config.get("upstreams") or []
    if not upstreams:
        problem(where, "no [[upstreams]]")
    for upstream in upstreams:
        if by_key.get(upstream.get("key")) != upstream:
            problem(where, f"[[upstreams]] '{upstream.get('key')}' differs from examples/mage-os-mirror.toml (copy it verbatim)")
    keys = [u.get("key") for u in upstreams if u.get("key") in by_key]
    if keys != sorted(keys, key=order.index):
        problem(where, "[[upstreams]] are not in the order of examples/mage-os-mirror.toml (the order decides precedence)")
    if "queue" not in config:
        problem(where, "no [queue] section: the farm would run in embedded mode")
    if config.get("storage", {}).get("kind") != "s3":
        problem(where, '[storage] kind must be "s3" for the distributed deployment')
    for key in ("access_key_id", "secret_access_key"):
        if key in config.get("storage", {}):
            problem(where, f"storage.{key} is a secret: pass AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY instead")
    if "url" in config.get("queue", {}):
        problem(where, "queue.url holds the broker password: pass it as FARM_QUEUE__URL instead")
    serve = config.get("serve", {})
    for key in SERVE_SECRETS:
        if key in serve:
            problem(where, f"serve.{key} is a secret: pass it as FARM_SERVE__{key.upper()} instead")
    host, port = listen_port(config)
    if port is None:
        problem(where, f"serve.listen {serve_setting(config, 'listen')!r} is not host:port")
    elif host not in ("0.0.0.0", "::"):
        problem(where, f"serve.listen must be 0.0.0.0:<port> in a container (got {host}): "
                       "probes and published ports cannot reach a loopback address")
    if shutdown_grace_seconds(config) is None:
        problem(where, f"serve.shutdown_grace {serve_setting(config, 'shutdown_grace')!r} is not a duration")


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
    env = worker.get("environment", {}) or {}

    # Every service that runs a farm binary reads farm.compose.toml, with the same secrets.
    farm_services = {
        name: service
        for name, service in services.items()
        if (service.get("command") or [None])[0] in ("worker", "coordinator")
    }
    for name in ("worker", "coordinator"):
        if name not in farm_services:
            problem(where, f"no service {name} running the {name} binary")
    url_from_env = "queue" in farm and "url" not in farm["queue"]
    for name, service in farm_services.items():
        mounts = service.get("volumes", []) or []
        if not any(m.startswith("./farm.compose.toml:/etc/farm/farm.toml") for m in mounts):
            problem(where, f"{name} must mount ./farm.compose.toml at /etc/farm/farm.toml")
        if "/etc/farm/farm.toml" not in (service.get("command") or []):
            problem(where, f"{name} command must pass --config /etc/farm/farm.toml")
        service_env = service.get("environment", {}) or {}
        if url_from_env and "FARM_QUEUE__URL" not in service_env:
            problem(where, f"{name}: farm.compose.toml has no queue.url, so {name} needs FARM_QUEUE__URL "
                           "(the config does not load without it)")
        for key in ("FARM_QUEUE__URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if key in service_env and service_env[key] != env.get(key):
                problem(where, f"{name}: {key} differs from the worker's")

    # Published ports only on the loopback interface (local try-out credentials).
    for name, service in services.items():
        for port in service.get("ports", []) or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                fields = str(port).split(":")
                host_ip = fields[0] if len(fields) == 3 else None
            if host_ip != "127.0.0.1":
                problem(where, f"service {name}: port {port} is not bound to 127.0.0.1")

    # One coordinator per bucket (it takes the bucket lock): among the services `up` starts (no
    # profiles), at most one runs `coordinator serve` or `coordinator build`.
    def coordinator_mode(service):
        """Like the module-level coordinator_mode, for a compose service's command."""
        command = service.get("command") or []
        return command[1] if len(command) > 1 and command[0] == "coordinator" else None

    lock_takers = [n for n, svc in farm_services.items() if coordinator_mode(svc) in ("serve", "build")]
    started_by_up = [n for n in lock_takers if not services[n].get("profiles")]
    if len(started_by_up) > 1:
        problem(where, f"{', '.join(started_by_up)} all start with `up` and take the same bucket lock; "
                       "put all but one under a profile")
    servers = [n for n in lock_takers if coordinator_mode(services[n]) == "serve"]
    one_shots = [n for n in lock_takers if coordinator_mode(services[n]) == "build"]
    if coordinator_mode(services.get("coordinator", {})) != "serve":
        problem(where, "service coordinator must run `coordinator serve` (the always-on coordinator)")
    if not one_shots:
        problem(where, "no service runs the one-shot `coordinator build`")
    for name in one_shots:
        if services[name].get("restart") != "no":
            problem(where, f'{name} must have restart: "no" (one-shot build)')
        if not services[name].get("profiles"):
            problem(where, f"{name} (one-shot build) must be under a profile, so `up` does not start it "
                           "next to the coordinator")
    grace = shutdown_grace_seconds(farm)
    _, port = listen_port(farm)
    for name in servers:
        service = services[name]
        if service.get("restart") not in ("always", "unless-stopped"):
            problem(where, f"{name} runs `coordinator serve` and must have restart: unless-stopped")
        if (service.get("scale") or 1) > 1:
            problem(where, f"{name}: scale must be 1 (one coordinator per bucket)")
        if ((service.get("deploy") or {}).get("replicas") or 1) > 1:
            problem(where, f"{name}: deploy.replicas must be 1 (one coordinator per bucket)")
        published = [
            str(p.get("target")) if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/")[0]
            for p in service.get("ports", []) or []
        ]
        if port is not None and str(port) not in published:
            problem(where, f"{name} does not publish container port {port} (serve.listen of farm.compose.toml)")
        stop_grace = parse_duration(service.get("stop_grace_period", "10s"))
        if grace is not None and (stop_grace is None or stop_grace < grace + SAVE_MARGIN_SECONDS):
            problem(where, f"{name}: stop_grace_period {service.get('stop_grace_period', '10s (default)')} "
                           f"must be at least serve.shutdown_grace + {SAVE_MARGIN_SECONDS}s "
                           f"({grace + SAVE_MARGIN_SECONDS:.0f}s), or SIGKILL cuts the final save short")

    # The services must agree on host names, credentials and the bucket.
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


def workloads(objects):
    """Every Deployment and CronJob: kind, name, file, pod template labels and pod spec."""
    for obj in objects:
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield {
            "kind": obj["kind"],
            "name": obj["metadata"]["name"],
            "file": obj["_file"],
            "object": obj,
            "labels": (template.get("metadata") or {}).get("labels") or {},
            "spec": template["spec"],
        }


def coordinator_mode(container):
    """"serve" or "build" for a container running `coordinator serve|build`, else None."""
    args = container.get("args") or []
    return args[1] if len(args) > 1 and args[0] == "coordinator" else None


def resolve_port(container_ports, port):
    """The containerPort a probe or Service targetPort names (by name or number), or None."""
    for entry in container_ports:
        if port in (entry.get("name"), entry.get("containerPort")):
            return entry.get("containerPort")
    return None


def check_k8s(repo, k8s_dir, farm):
    kustomization = load_yaml_docs(k8s_dir / "kustomization.yaml")[0]
    namespace = kustomization.get("namespace")
    listed = kustomization.get("resources", [])
    present = sorted(p.name for p in k8s_dir.glob("*.yaml") if p.name not in ("kustomization.yaml",))
    kustomization_text = (k8s_dir / "kustomization.yaml").read_text(encoding="utf-8")
    # Files deliberately not in resources; kustomization.yaml must say why (name them in a comment).
    not_applied = {
        "secrets.example.yaml": "a template with placeholders",
        "coordinator-cronjob.yaml": "the documented alternative to the coordinator Deployment "
                                    "(both take the bucket lock)",
    }
    for name in listed:
        if not (k8s_dir / name).is_file():
            problem("kustomization.yaml", f"resource {name} does not exist")
    for name in present:
        if name not in listed and name not in not_applied:
            problem("kustomization.yaml", f"{name} is not listed in resources")
    for name, why in not_applied.items():
        if name in listed:
            problem("kustomization.yaml", f"{name} is {why} and must not be listed")
        if not (k8s_dir / name).is_file():
            problem("kustomization.yaml", f"{name} is allowed to be unlisted but does not exist")
        elif not re.search(rf"^#.*{re.escape(name)}", kustomization_text, re.MULTILINE):
            problem("kustomization.yaml", f"{name} is not listed: say why in a comment")

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
    for workload in workloads(objects):
        where, spec = workload["name"], workload["spec"]
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

    check_coordinator_workloads(objects, by_kind, listed, farm)
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


def check_coordinator_workloads(objects, by_kind, listed, farm):
    """Replica counts, the one-coordinator-per-bucket rule, probes, grace period, Services."""
    all_workloads = list(workloads(objects))
    keda_targets = {
        scaled["spec"]["scaleTargetRef"]["name"]
        for scaled in by_kind.get("ScaledObject", {}).values()
        if scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    }
    _, listen = listen_port(farm)
    grace = shutdown_grace_seconds(farm)

    # One coordinator per bucket: kustomization.yaml applies at most one workload that takes the
    # bucket lock (`coordinator serve` or `coordinator build`).
    lock_takers = []
    for workload in all_workloads:
        modes = {coordinator_mode(c) for c in workload["spec"].get("containers", [])} - {None}
        workload["modes"] = modes
        if modes and workload["file"] in listed:
            lock_takers.append(f"{workload['kind']} {workload['name']}")
        expected = {"Deployment": "serve", "CronJob": "build"}[workload["kind"]]
        for mode in modes - {expected}:
            problem(workload["file"], f"{workload['kind']} {workload['name']} runs `coordinator {mode}`; "
                                      f"a {workload['kind']} runs `coordinator {expected}`")
    if len(lock_takers) > 1:
        problem("kustomization.yaml", f"{' and '.join(lock_takers)} both take the bucket lock; "
                                      "apply only one coordinator per bucket")

    for workload in all_workloads:
        if workload["kind"] != "Deployment":
            continue
        where, name, spec = workload["file"], workload["name"], workload["object"]["spec"]
        match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        if not match_labels or any(workload["labels"].get(k) != v for k, v in match_labels.items()):
            problem(where, f"Deployment {name}: selector.matchLabels do not match the pod template labels")
        if name in keda_targets:
            if "replicas" in spec:
                problem(where, f"Deployment {name} sets replicas; KEDA owns the replica count")
            if "serve" in workload["modes"]:
                problem(where, f"Deployment {name} runs `coordinator serve`; KEDA must not scale it")
        if "serve" not in workload["modes"]:
            continue
        # The always-on coordinator: exactly one pod, never two at once (the bucket lock).
        if spec.get("replicas") != 1:
            problem(where, f"Deployment {name} runs `coordinator serve` and must set replicas: 1")
        if (spec.get("strategy") or {}).get("type") != "Recreate":
            problem(where, f"Deployment {name} must use strategy Recreate: a rolling update overlaps two "
                           "coordinators on the bucket lock")
        pod = workload["spec"]
        period = pod.get("terminationGracePeriodSeconds", 30)
        if grace is not None and period < grace + SAVE_MARGIN_SECONDS:
            problem(where, f"Deployment {name}: terminationGracePeriodSeconds {period} must be at least "
                           f"serve.shutdown_grace + {SAVE_MARGIN_SECONDS}s ({grace + SAVE_MARGIN_SECONDS:.0f}), "
                           "or SIGKILL cuts the final save short")
        for container in pod.get("containers", []):
            if coordinator_mode(container) != "serve":
                continue
            cname = f"{name}/{container['name']}"
            ports = container.get("ports") or []
            if listen is not None and listen not in {p.get("containerPort") for p in ports}:
                problem(cname, f"no containerPort {listen} (serve.listen of the ConfigMap's farm.toml)")
            for probe, path, required in (
                ("livenessProbe", "/healthz", True),
                ("readinessProbe", "/readyz", True),
                ("startupProbe", "/healthz", False),
            ):
                if probe not in container:
                    if required:
                        problem(cname, f"no {probe} (httpGet {path})")
                    continue
                http_get = container[probe].get("httpGet")
                if not http_get:
                    problem(cname, f"{probe} must be an httpGet on {path}")
                    continue
                if http_get.get("path") != path:
                    problem(cname, f"{probe} path {http_get.get('path')} must be {path}")
                target = resolve_port(ports, http_get.get("port"))
                if target is None or target != listen:
                    problem(cname, f"{probe} port {http_get.get('port')} is not the serve.listen port {listen}")
            for env in container.get("env", []):
                if not env["name"].startswith("FARM_SERVE__"):
                    continue
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref is None:
                    problem(cname, f"env {env['name']} is a secret: take it from a Secret (secretKeyRef)")
                elif ref.get("optional") is not True:
                    problem(cname, f"env {env['name']}: secretKeyRef must be optional: true "
                                   "(a missing hook secret turns that hook off)")
            names = {env["name"] for env in container.get("env", [])}
            for key in SERVE_SECRETS:
                if f"FARM_SERVE__{key.upper()}" not in names:
                    problem(cname, f"env FARM_SERVE__{key.upper()} is not wired (serve.{key})")

    # Services: cluster-internal, selecting exactly the pods they are meant for, on a port they open.
    for name, service in by_kind.get("Service", {}).items():
        where, spec = service["_file"], service["spec"]
        if spec.get("type", "ClusterIP") != "ClusterIP":
            problem(where, f"Service {name} must be ClusterIP: expose only /hooks/* through an ingress")
        selector = spec.get("selector") or {}
        selected = [
            w for w in all_workloads if selector and all(w["labels"].get(k) == v for k, v in selector.items())
        ]
        if len(selected) != 1:
            found = ", ".join(f"{w['kind']} {w['name']}" for w in selected) or "no pods"
            problem(where, f"Service {name} selector must match the pods of exactly one workload; matches {found}")
            continue
        workload = selected[0]
        if workload["kind"] != "Deployment":
            problem(where, f"Service {name} selects the pods of {workload['kind']} {workload['name']}")
        if service["_file"] in listed and workload["file"] not in listed:
            problem("kustomization.yaml", f"Service {name} is listed but {workload['file']} it selects is not")
        container_ports = [p for c in workload["spec"].get("containers", []) for p in c.get("ports") or []]
        for port in spec.get("ports", []):
            target = resolve_port(container_ports, port.get("targetPort", port.get("port")))
            if target is None:
                problem(where, f"Service {name} targetPort {port.get('targetPort')} is no container port of "
                               f"{workload['kind']} {workload['name']}")
            elif "serve" in workload.get("modes", ()) and target != listen:
                problem(where, f"Service {name} targetPort {port.get('targetPort')} is not the serve.listen "
                               f"port {listen}")


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

    # The image documents the port `coordinator serve` listens on in both configs.
    dockerfile = (deploy / "Dockerfile").read_text(encoding="utf-8")
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.*)$", dockerfile, re.MULTILINE)
               for p in re.findall(r"(\d+)(?:/tcp)?", line)}
    for where, config in (("farm.compose.toml", compose_farm), ("k8s/configmap.yaml farm.toml", k8s_farm)):
        _, port = listen_port(config)
        if port is not None and port not in exposed:
            problem(where, f"serve.listen port {port} is not EXPOSEd by deploy/Dockerfile")

    check_compose(deploy, load_yaml_docs(deploy / "compose.yaml")[0], compose_farm)
    check_k8s(repo, k8s_dir, k8s_farm)

    for line in problems:
        print(f"  {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
