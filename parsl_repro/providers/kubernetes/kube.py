"""``KubernetesProvider``: blocks are pods in a Kubernetes cluster.

Each block is one pod with one container, made from ``image``, that runs ``/bin/bash -c`` on
``worker_init`` followed by the executor's command (``template.py``); the pod's ``restartPolicy``
is ``Never``, so the pod ends when its workers do. ``status`` reads each pod's phase (``Pending``,
``Running``, ``Succeeded``, ``Failed``, ``Unknown``) and ``cancel`` deletes the pod.

The cluster is reached with the ``kubernetes`` client (the ``kubernetes`` extra), configured from
the kubeconfig file (``$KUBECONFIG``, else ``~/.kube/config``, read when the provider is built)
or, when there is none, from the service account of the pod this process runs in. The client
is imported when a provider is built, never when this module is imported, so
``parsl_repro.providers`` stays importable without it.
"""
from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Sequence
from string import Template
from typing import Any

from parsl_repro.errors import ConfigurationError, OptionalModuleMissing
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import SubmitException
from parsl_repro.providers.kubernetes.template import template_string
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin, sanitize_dns_subdomain_rfc1123

logger = logging.getLogger(__name__)

translate_table = {
    "Running": JobState.RUNNING,
    "Pending": JobState.PENDING,
    "Succeeded": JobState.COMPLETED,
    "Failed": JobState.FAILED,
    "Unknown": JobState.UNKNOWN,
}
"""Pod phases (``status.phase``) as block states; a phase not listed is ``UNKNOWN``."""

FALLBACK_POD_NAME = "parsl.kube"
"""The pod name prefix used when ``pod_name``/``job_name`` leaves nothing valid after cleaning."""


def _import_kubernetes() -> tuple[Any, Any]:
    """The ``kubernetes`` package's ``client`` and ``config`` modules.

    Imported here rather than at the top of the module because the package is optional: only
    someone who builds a ``KubernetesProvider`` needs it installed."""
    try:
        from kubernetes import client, config
    except ImportError as e:
        raise OptionalModuleMissing(
            ["kubernetes"], f"KubernetesProvider needs the kubernetes client ({e}); "
                            "install it with: pip install 'parsl-repro[kubernetes]'") from e
    return client, config


def pod_manifest(pod_name: str, job_id: str, image: str, namespace: str, script: str, *,
                 max_cpu: float = 2, max_mem: str = "500Mi", init_cpu: float = 1, init_mem: str = "250Mi",
                 extra_requests: dict[str, str] | None = None, extra_limits: dict[str, str] | None = None,
                 user_id: str | None = None, group_id: str | None = None, run_as_non_root: bool = False,
                 secret: str | None = None, persistent_volumes: Sequence[tuple[str, str]] = (),
                 service_account_name: str | None = None,
                 annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """The pod a block is, as the JSON body of ``POST /api/v1/namespaces/{namespace}/pods``.

    Field names are the API's own (``restartPolicy``, ``volumeMounts``, ...), so the dict goes
    to the server as it is. The container is named after the job id and the pod carries the
    label ``parsl-job-id``; a security context is set only when both ``user_id`` and
    ``group_id`` are given.
    """
    container: dict[str, Any] = {
        "name": job_id,
        "image": image,
        "command": ["/bin/bash"],
        "args": ["-c", script],
        "resources": {
            "limits": {"cpu": str(max_cpu), "memory": max_mem} | (extra_limits or {}),
            "requests": {"cpu": str(init_cpu), "memory": init_mem} | (extra_requests or {}),
        },
    }
    if persistent_volumes:
        container["volumeMounts"] = [{"name": claim, "mountPath": path} for claim, path in persistent_volumes]
    if user_id and group_id:
        container["securityContext"] = {"runAsUser": int(user_id), "runAsGroup": int(group_id),
                                        "runAsNonRoot": run_as_non_root}
    metadata: dict[str, Any] = {"name": pod_name, "namespace": namespace, "labels": {"parsl-job-id": job_id}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
    if secret:
        spec["imagePullSecrets"] = [{"name": secret}]
    if persistent_volumes:
        spec["volumes"] = [{"name": claim, "persistentVolumeClaim": {"claimName": claim}}
                           for claim, _ in persistent_volumes]
    if service_account_name:
        spec["serviceAccountName"] = service_account_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


class KubernetesProvider(ExecutionProvider, RepresentationMixin):
    """Blocks as pods in one namespace of a Kubernetes cluster.

    Parameters (Parsl's, with Parsl's defaults)
    -------------------------------------------
    image : the container image each pod runs; it must hold Python and parsl_repro.
    namespace : where pods are created.
    nodes_per_block : kept for the strategy's arithmetic; a block is always one pod.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    max_cpu, max_mem : the container's resource limits (CPU units; memory such as ``"500Mi"``).
    init_cpu, init_mem : the container's resource requests.
    extra_requests, extra_limits : more requests/limits, e.g. ``{"nvidia.com/gpu": "1"}``.
    worker_init : shell lines run in the container before the worker command.
    pod_name : prefix of each pod's name (default: the executor's job name); cleaned into a
        DNS subdomain name and followed by ``.<job id>``.
    user_id, group_id, run_as_non_root : the container's security context (set when both ids are).
    secret : name of an image pull secret.
    persistent_volumes : ``(claim name, mount path)`` pairs, each claim mounted in the container.
    service_account_name : the service account pods run as.
    annotations : annotations put on every pod.

    The job id is 8 hex digits; ``resources[job_id]`` holds ``job_id``, ``pod_name`` and
    ``status``. Each block runs the executor's command once: ``tasks_per_node`` is not used
    (there is no launcher), as in Parsl.
    """

    @typechecked_config
    def __init__(self, image: str, namespace: str = "default", nodes_per_block: int = 1, init_blocks: int = 4,
                 min_blocks: int = 0, max_blocks: int = 10, max_cpu: float = 2, max_mem: str = "500Mi",
                 init_cpu: float = 1, init_mem: str = "250Mi", extra_requests: dict[str, str] | None = None,
                 extra_limits: dict[str, str] | None = None, parallelism: float = 1, worker_init: str = "",
                 pod_name: str | None = None, user_id: str | None = None, group_id: str | None = None,
                 run_as_non_root: bool = False, secret: str | None = None,
                 persistent_volumes: Sequence[tuple[str, str]] = (), service_account_name: str | None = None,
                 annotations: dict[str, str] | None = None) -> None:
        client, config = _import_kubernetes()
        self.image = image
        self.namespace = namespace
        self.nodes_per_block = nodes_per_block
        self.init_blocks = init_blocks
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.max_cpu = max_cpu
        self.max_mem = max_mem
        self.init_cpu = init_cpu
        self.init_mem = init_mem
        self.extra_requests = dict(extra_requests or {})
        self.extra_limits = dict(extra_limits or {})
        self.parallelism = parallelism
        self.worker_init = worker_init
        self.pod_name = pod_name
        self.user_id = user_id
        self.group_id = group_id
        self.run_as_non_root = run_as_non_root
        self.secret = secret
        self.persistent_volumes = list(persistent_volumes)
        self.service_account_name = service_account_name
        self.annotations = annotations
        self.script_dir: str | None = None
        self.resources: dict[str, dict[str, Any]] = {}
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None
        self._api_exception = client.ApiException
        self.kube_client = client.CoreV1Api(client.ApiClient(self._load_configuration(client, config)))
        self._lock = threading.Lock()

    @staticmethod
    def _load_configuration(client: Any, config: Any) -> Any:
        """A client ``Configuration`` of our own (the process-wide default is left alone): from
        the kubeconfig file, else from the in-cluster service account."""
        configuration = client.Configuration()
        # the kubernetes package reads $KUBECONFIG once, when it is imported; read it now instead
        kubeconfig = os.environ.get("KUBECONFIG", "~/.kube/config")
        try:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
            return configuration
        except config.ConfigException as file_error:
            try:
                config.load_incluster_config(client_configuration=configuration)
                return configuration
            except config.ConfigException as cluster_error:
                raise ConfigurationError(
                    f"KubernetesProvider: found no Kubernetes configuration: kubeconfig {kubeconfig!r} "
                    f"($KUBECONFIG): {file_error}; in-cluster service account: {cluster_error}") from cluster_error

    @property
    def label(self) -> str:
        return "kubernetes"

    @property
    def status_polling_interval(self) -> int:
        return 60

    def _pod_name_for(self, job_name: str, job_id: str) -> str:
        prefix = self.pod_name or job_name
        try:
            prefix = sanitize_dns_subdomain_rfc1123(prefix)
        except ValueError:
            logger.warning("Invalid pod name %r for job %r, falling back to %r", prefix, job_id, FALLBACK_POD_NAME)
            prefix = FALLBACK_POD_NAME
        # a pod name is at most 253 characters, and must keep room for ".<job id>"
        prefix = prefix[:253 - 1 - len(job_id)].rstrip(".-")
        return f"{prefix}.{job_id}"

    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.kube") -> str:
        """Create the block's pod; returns its job id.

        Raises ``SubmitException`` carrying the API server's status code and reason when it
        refuses the pod (a missing namespace, a quota, a bad image pull secret name, ...)."""
        job_id = uuid.uuid4().hex[:8]
        pod_name = self._pod_name_for(job_name, job_id)
        script = Template(template_string).substitute(worker_init=self.worker_init, command=command)
        manifest = pod_manifest(
            pod_name, job_id, self.image, self.namespace, script, max_cpu=self.max_cpu, max_mem=self.max_mem,
            init_cpu=self.init_cpu, init_mem=self.init_mem, extra_requests=self.extra_requests,
            extra_limits=self.extra_limits, user_id=self.user_id, group_id=self.group_id,
            run_as_non_root=self.run_as_non_root, secret=self.secret, persistent_volumes=self.persistent_volumes,
            service_account_name=self.service_account_name, annotations=self.annotations)
        try:
            pod = self.kube_client.create_namespaced_pod(namespace=self.namespace, body=manifest)
        except self._api_exception as e:
            raise SubmitException(pod_name, f"the Kubernetes API refused the pod: {e.status} {e.reason}",
                                  stdout=e.body, retcode=e.status) from e
        phase = pod.status.phase if pod.status is not None else None
        with self._lock:
            self.resources[job_id] = {"job_id": job_id, "pod_name": pod_name,
                                      "status": JobStatus(translate_table.get(phase, JobState.PENDING))}
        logger.debug("Created pod %s in namespace %s for job %s", pod_name, self.namespace, job_id)
        return job_id

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """Each job's status, from its pod's phase. Jobs already in a final state are not asked
        about again. A pod that has disappeared without ``cancel`` is ``CANCELLED`` with a
        message saying so; when the API cannot be reached the last known status stays."""
        with self._lock:
            active = [(job_id, record["pod_name"]) for job_id, record in self.resources.items()
                      if not record["status"].terminal]
        for job_id, pod_name in active:
            try:
                pod = self.kube_client.read_namespaced_pod(name=pod_name, namespace=self.namespace)
            except self._api_exception as e:
                if e.status != 404:
                    logger.warning("Could not read pod %s (job %s): %s %s", pod_name, job_id, e.status, e.reason)
                    continue
                new_status = JobStatus(JobState.CANCELLED,
                                       message=f"pod {pod_name} was deleted, not by parsl_repro")
            except Exception as e:  # the server unreachable: ask again at the next poll
                logger.warning("Could not read pod %s (job %s): %s", pod_name, job_id, e)
                continue
            else:
                phase = pod.status.phase if pod.status is not None else None
                new_status = JobStatus(translate_table.get(phase, JobState.UNKNOWN),
                                       message=pod.status.message if pod.status is not None else None)
            with self._lock:
                if not self.resources[job_id]["status"].terminal:  # cancel() may have got there first
                    self.resources[job_id]["status"] = new_status
        with self._lock:
            return [self.resources[str(job_id)]["status"] for job_id in job_ids]

    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """Delete each job's pod. True for each pod deleted or already gone (its status becomes
        ``CANCELLED``); False when the API server refused or could not be reached."""
        results = []
        for job_id in job_ids:
            with self._lock:
                pod_name = self.resources[str(job_id)]["pod_name"]
            try:
                self.kube_client.delete_namespaced_pod(name=pod_name, namespace=self.namespace)
            except self._api_exception as e:
                if e.status != 404:
                    logger.warning("Could not delete pod %s (job %s): %s %s", pod_name, job_id, e.status, e.reason)
                    results.append(False)
                    continue
            except Exception as e:
                logger.warning("Could not delete pod %s (job %s): %s", pod_name, job_id, e)
                results.append(False)
                continue
            logger.debug("Deleted pod %s (job %s)", pod_name, job_id)
            with self._lock:
                self.resources[str(job_id)]["status"] = JobStatus(JobState.CANCELLED)
            results.append(True)
        return results
