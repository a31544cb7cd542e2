"""KubernetesProvider driving the real ``kubernetes`` client against a local stand-in API server.

The stand-in (``FakeKubeApiServer``) is a small HTTP server on loopback that answers the three
REST calls the provider makes, with JSON bodies shaped like the real API server's: create
(``POST /api/v1/namespaces/{ns}/pods``), read and delete (``GET``/``DELETE .../pods/{name}``),
and ``Status`` objects for errors. A stand-in because a real cluster (kind, k3s) needs container
runtimes and images this machine cannot fetch. What it does not do: schedule or run anything. A
pod stays ``Pending`` until a test sets its phase, as a kubelet would, and deletion removes a pod
at once instead of after its grace period. So the client's configuration, authentication, URLs,
request bodies and the provider's handling of answers and errors are real; the pod's life is
played by the test.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import ThreadingHTTPServer

import pytest

from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState
from parsl_repro.providers.errors import SubmitException

kubernetes = pytest.importorskip("kubernetes")

from parsl_repro.providers import KubernetesProvider  # noqa: E402
from tests.json_stand_in import JsonHandler  # noqa: E402

TOKEN = "stand-in-bearer-token"
POD_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/?]+))?(?:\?.*)?$")


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class FakeKubeApiServer(ThreadingHTTPServer):
    """Pods in memory, keyed by (namespace, name); every request is recorded."""

    daemon_threads = True

    def __init__(self, namespaces: tuple[str, ...] = ("default", "parsl")) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.namespaces = set(namespaces)
        self.pods: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str, str | None, dict | None]] = []  # method, path, auth, body
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def set_phase(self, namespace: str, name: str, phase: str, message: str | None = None) -> None:
        with self.lock:
            self.pods[(namespace, name)]["status"] = {"phase": phase} | ({"message": message} if message else {})


class _Handler(JsonHandler):
    server: FakeKubeApiServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        server = self.server
        with server.lock:
            server.requests.append((self.command, self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, _status(401, "Unauthorized", "Unauthorized"))
        match = POD_PATH.match(self.path)
        if match is None:
            return self._answer(404, _status(404, "NotFound", f"the server could not find {self.path}"))
        namespace, name = match["ns"], match["name"]
        if namespace not in server.namespaces:
            return self._answer(404, _status(404, "NotFound", f'namespaces "{namespace}" not found'))
        with server.lock:
            if self.command == "POST" and name is None:
                name = body["metadata"]["name"]
                if (namespace, name) in server.pods:
                    return self._answer(409, _status(409, "AlreadyExists", f'pods "{name}" already exists'))
                pod = json.loads(json.dumps(body))
                pod["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), resourceVersion="1",
                                       creationTimestamp="2026-12-06T12:00:00Z")
                pod["status"] = {"phase": "Pending", "qosClass": "Burstable"}
                server.pods[(namespace, name)] = pod
                return self._answer(201, pod)
            pod = server.pods.get((namespace, name))
            if pod is None:
                return self._answer(404, _status(404, "NotFound", f'pods "{name}" not found'))
            if self.command == "GET":
                return self._answer(200, pod)
            if self.command == "DELETE":
                del server.pods[(namespace, name)]
                pod["metadata"]["deletionTimestamp"] = "2026-12-06T12:01:00Z"
                return self._answer(200, pod)
        return self._answer(405, _status(405, "MethodNotAllowed", self.command))

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def api_server():
    server = FakeKubeApiServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-kube-api", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def kubeconfig(api_server, tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster:
    server: {api_server.url}
users:
- name: tester
  user:
    token: {TOKEN}
contexts:
- name: stand-in
  context:
    cluster: stand-in
    user: tester
current-context: stand-in
""")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


def _posted_pods(server: FakeKubeApiServer) -> list[dict]:
    return [body for method, _, _, body in server.requests if method == "POST"]


def test_a_block_is_a_pod_running_worker_init_then_the_command_with_the_asked_resources(api_server, kubeconfig):
    provider = KubernetesProvider(
        image="python:3.12-slim", namespace="parsl", max_cpu=4, max_mem="2Gi", init_cpu=0.5, init_mem="1Gi",
        extra_limits={"nvidia.com/gpu": "1"}, worker_init="source /env/bin/activate",
        persistent_volumes=[("data-claim", "/data")], service_account_name="runner",
        annotations={"team": "science"}, user_id="1000", group_id="100", run_as_non_root=True, secret="regcred")
    job_id = provider.submit("process_worker_pool.py --block 0", 1, "htex.block-0")

    assert re.fullmatch(r"[0-9a-f]{8}", job_id)
    [(method, path, auth, manifest)] = api_server.requests
    assert (method, path, auth) == ("POST", "/api/v1/namespaces/parsl/pods", f"Bearer {TOKEN}")
    pod_name = f"htex.block-0.{job_id}"
    assert manifest["metadata"] == {"name": pod_name, "namespace": "parsl", "labels": {"parsl-job-id": job_id},
                                    "annotations": {"team": "science"}}
    assert manifest["spec"] == {
        "containers": [{
            "name": job_id, "image": "python:3.12-slim", "command": ["/bin/bash"],
            "args": ["-c", "source /env/bin/activate\n\nprocess_worker_pool.py --block 0\n"],
            "resources": {"limits": {"cpu": "4", "memory": "2Gi", "nvidia.com/gpu": "1"},
                          "requests": {"cpu": "0.5", "memory": "1Gi"}},
            "volumeMounts": [{"name": "data-claim", "mountPath": "/data"}],
            "securityContext": {"runAsUser": 1000, "runAsGroup": 100, "runAsNonRoot": True}}],
        "restartPolicy": "Never",
        "imagePullSecrets": [{"name": "regcred"}],
        "volumes": [{"name": "data-claim", "persistentVolumeClaim": {"claimName": "data-claim"}}],
        "serviceAccountName": "runner",
    }
    # every field is one the API defines, where it defines it: the client's own V1Pod model reads
    # the manifest back unchanged (an unknown or misplaced key would be dropped on the way)
    api_client = kubernetes.client.ApiClient()
    model = api_client.deserialize(json.dumps(manifest), "V1Pod", "application/json")
    assert api_client.sanitize_for_serialization(model) == manifest
    assert provider.resources[job_id]["pod_name"] == pod_name
    assert provider.status([job_id])[0].state is JobState.PENDING
    assert TOKEN not in repr(provider)


def test_pod_phases_become_block_states_and_final_ones_are_not_asked_again(api_server, kubeconfig):
    provider = KubernetesProvider(image="img")
    jobs = {phase: provider.submit("true", 1, f"phase-{phase.lower()}")
            for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown", "Evicted")}
    for phase, job_id in jobs.items():
        if phase != "Pending":
            api_server.set_phase("default", provider.resources[job_id]["pod_name"], phase,
                                 message="The node was low on memory." if phase == "Failed" else None)
    statuses = provider.status(list(jobs.values()))
    assert [s.state for s in statuses] == [JobState.PENDING, JobState.RUNNING, JobState.COMPLETED,
                                           JobState.FAILED, JobState.UNKNOWN, JobState.UNKNOWN]
    assert statuses[3].message == "The node was low on memory."

    reads = sum(1 for method, *_ in api_server.requests if method == "GET")
    provider.status(list(jobs.values()))
    # Succeeded and Failed are final: only the other four pods are read again
    assert sum(1 for method, *_ in api_server.requests if method == "GET") == reads + 4


def test_cancel_deletes_the_pod_and_the_block_is_cancelled(api_server, kubeconfig):
    provider = KubernetesProvider(image="img")
    job_id = provider.submit("sleep 1000", 1, "to-cancel")
    pod_name = provider.resources[job_id]["pod_name"]
    api_server.set_phase("default", pod_name, "Running")
    assert provider.status([job_id])[0].state is JobState.RUNNING

    assert provider.cancel([job_id]) == [True]
    assert ("default", pod_name) not in api_server.pods
    assert api_server.requests[-1][:2] == ("DELETE", f"/api/v1/namespaces/default/pods/{pod_name}")
    assert provider.status([job_id])[0].state is JobState.CANCELLED
    assert provider.cancel([job_id]) == [True]  # already gone (404) still counts as cancelled


def test_a_pod_deleted_behind_the_providers_back_is_cancelled_with_a_message(api_server, kubeconfig):
    provider = KubernetesProvider(image="img")
    job_id = provider.submit("sleep 1000", 1, "deleted-elsewhere")
    del api_server.pods[("default", provider.resources[job_id]["pod_name"])]
    status = provider.status([job_id])[0]
    assert status.state is JobState.CANCELLED and "not by parsl_repro" in status.message


def test_a_pod_the_api_refuses_raises_submit_exception_with_the_status_code(api_server, kubeconfig):
    provider = KubernetesProvider(image="img", namespace="no-such-namespace")
    with pytest.raises(SubmitException) as caught:
        provider.submit("true", 1, "refused")
    assert caught.value.retcode == 404
    assert 'namespaces \\"no-such-namespace\\" not found' in caught.value.stdout
    assert provider.resources == {}


def test_an_unreachable_api_server_keeps_the_last_known_status(api_server, kubeconfig):
    provider = KubernetesProvider(image="img")
    job_id = provider.submit("true", 1, "unreachable")
    api_server.shutdown()
    api_server.server_close()
    assert provider.status([job_id])[0].state is JobState.PENDING
    assert provider.cancel([job_id]) == [False]


@pytest.mark.parametrize("job_name", ["", ".", "-", "$$$"])
def test_a_job_name_with_nothing_valid_falls_back_to_parsl_kube(api_server, kubeconfig, job_name):
    provider = KubernetesProvider(image="img")
    job_id = provider.submit("true", 1, job_name)
    assert provider.resources[job_id]["pod_name"] == f"parsl.kube.{job_id}"


def test_a_long_pod_name_is_cut_to_253_characters_keeping_the_job_id(api_server, kubeconfig):
    provider = KubernetesProvider(image="img", pod_name="Block_" + "a." * 200)
    job_id = provider.submit("true", 1)
    pod_name = provider.resources[job_id]["pod_name"]
    assert len(pod_name) <= 253 and pod_name.startswith("block-a.a.") and pod_name.endswith(f"a.{job_id}")
    assert ("default", pod_name) in api_server.pods


def test_no_kubeconfig_and_no_cluster_raises_configuration_error_naming_both(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigurationError, match=r"kubeconfig .*missing.*in-cluster service account"):
        KubernetesProvider(image="img")
