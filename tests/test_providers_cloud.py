"""The cloud providers' optional SDKs, GoogleCloudProvider against a local stand-in of the Compute
API, and AzureProvider's requests as rendered.

* Each provider's SDK is optional: ``import parsl_repro.providers`` must not import any of them,
  and building a provider without its SDK raises ``OptionalModuleMissing`` naming the extra to
  install. Checked in subprocesses whose imports of the SDKs are refused by a ``sys.meta_path``
  finder, so the check holds on a machine where they are installed.
* GoogleCloudProvider runs the real google-api-python-client (its bundled discovery document)
  and google-auth (a service account key made here, signing a real JWT) against
  ``FakeComputeApi``, a loopback HTTP server answering the OAuth token exchange and the five
  Compute calls the provider makes with JSON shaped like Google's. A stand-in because the real
  API needs a Google Cloud project. What it does not do: boot anything or run the startup
  script; instances change status only when a test says so.
* AzureProvider is not run against anything: the Azure SDK is not installed for the tests (its
  long-running-operation polling and ARM authentication would need a much larger stand-in). Its
  request bodies and startup script are compared with the text expected, its status table with
  Parsl's, and its configuration errors are checked; no Azure API call is exercised.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from http.server import ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import SimpleLauncher
from parsl_repro.providers.azure import azure as azure_module
from parsl_repro.providers.errors import SubmitException
from parsl_repro.providers.googlecloud import googlecloud as google_module
from tests.json_stand_in import JsonHandler

SDK_TOP_LEVEL = ["kubernetes", "boto3", "botocore", "googleapiclient", "google", "azure"]

_BLOCKER = textwrap.dedent("""
    import sys

    class RefuseSDKs:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)", name=name)
            return None

    sys.meta_path.insert(0, RefuseSDKs())
""")


def _run_python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_providers_package_imports_no_cloud_sdk():
    loaded = _run_python(textwrap.dedent(f"""
        import json, sys
        import parsl_repro.providers
        from parsl_repro.providers import AWSProvider, AzureProvider, GoogleCloudProvider, KubernetesProvider
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({SDK_TOP_LEVEL!r}))))
    """))
    assert loaded == []


def test_building_a_provider_without_its_sdk_raises_optional_module_missing_naming_the_extra(tmp_path):
    results = _run_python(f"BLOCKED = set({SDK_TOP_LEVEL!r})\n" + _BLOCKER + textwrap.dedent(f"""
        import json
        from parsl_repro.errors import OptionalModuleMissing
        from parsl_repro.providers import AWSProvider, AzureProvider, GoogleCloudProvider, KubernetesProvider

        vm_reference = dict(publisher="p", offer="o", sku="s", version="v", vm_size="Standard_B1s",
                            disk_size_gb=30, admin_username="parsl", password="not-a-password")
        attempts = {{
            "kubernetes": lambda: KubernetesProvider(image="img"),
            "aws": lambda: AWSProvider(image_id="ami-1", key_name=None, state_file={str(tmp_path / "s.json")!r}),
            "google_cloud": lambda: GoogleCloudProvider("project", "key.json", "us-central1", "debian-cloud",
                                                        "debian-12"),
            "azure": lambda: AzureProvider(vm_reference),
        }}
        results = {{}}
        for extra, build in attempts.items():
            try:
                build()
                results[extra] = "built"
            except OptionalModuleMissing as e:
                results[extra] = [e.module_names, str(e)]
        print(json.dumps(results))
    """))
    expected_modules = {"kubernetes": ["kubernetes"], "aws": ["boto3"],
                        "google_cloud": ["googleapiclient", "google.auth"], "azure": azure_module.SDK_PACKAGES}
    for extra, modules in expected_modules.items():
        module_names, message = results[extra]
        assert module_names == modules
        assert message.startswith("The functionality requested requires optional modules")
        assert f"pip install 'parsl-repro[{extra}]'" in message and "refused by the test" in message
    assert not (tmp_path / "s.json").exists()


# --- Google Compute Engine --------------------------------------------------------------------------

def test_google_status_table_is_parsls():
    assert google_module.translate_table == {
        "PENDING": JobState.PENDING, "PROVISIONING": JobState.PENDING, "STAGING": JobState.PENDING,
        "RUNNING": JobState.RUNNING, "DONE": JobState.COMPLETED, "STOPPING": JobState.COMPLETED,
        "STOPPED": JobState.COMPLETED, "TERMINATED": JobState.COMPLETED, "SUSPENDING": JobState.COMPLETED,
        "SUSPENDED": JobState.COMPLETED}


def test_google_instance_body_boots_the_image_and_runs_the_startup_script():
    script = google_module.STARTUP_SCRIPT.format(job_name="htex.0", command="worker --block 0")
    assert script == '#!/bin/bash\nexport JOBNAME="htex.0"\nworker --block 0\n'
    assert google_module.instance_body("parslauto-1", "us-central1-a", "n1-standard-1",
                                       "projects/debian-cloud/global/images/debian-12-v1", script) == {
        "name": "parslauto-1",
        "machineType": "zones/us-central1-a/machineTypes/n1-standard-1",
        "disks": [{"boot": True, "autoDelete": True,
                   "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/debian-12-v1"}}],
        "networkInterfaces": [{"network": "global/networks/default",
                               "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]}],
        "serviceAccounts": [{"email": "default",
                             "scopes": ["https://www.googleapis.com/auth/devstorage.read_write",
                                        "https://www.googleapis.com/auth/logging.write"]}],
        "metadata": {"items": [{"key": "startup-script", "value": script}]},
        "labels": {"parsl-block": "true"},
    }


ACCESS_TOKEN = "stand-in-access-token"


def _google_error(code: int, message: str) -> dict:
    return {"error": {"code": code, "message": message, "errors": [{"message": message, "domain": "global",
                                                                    "reason": "notFound"}]}}


class FakeComputeApi(ThreadingHTTPServer):
    """OAuth's token endpoint and Compute's zones, image families and instances, in memory."""

    daemon_threads = True

    def __init__(self, public_key_pem: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _ComputeHandler)
        self.public_key_pem = public_key_pem
        self.zones = [{"name": "europe-west1-b", "status": "UP"}, {"name": "us-central1-a", "status": "DOWN"},
                      {"name": "us-central1-b", "status": "UP"}]
        self.instances: dict[str, dict] = {}  # by name, in zone us-central1-b
        self.requests: list[tuple[str, str, str | None, dict | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ComputeHandler(JsonHandler):
    server: FakeComputeApi

    def _operation(self, kind: str, name: str) -> dict:
        return {"kind": "compute#operation", "name": f"operation-{kind}-{name}", "operationType": kind,
                "status": "PENDING", "targetLink": f"{self.server.url}/compute/v1/.../instances/{name}"}

    def _handle(self) -> None:
        from google.auth import jwt

        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(self.path).path
        server = self.server
        if path == "/token":
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            claims = jwt.decode(form["assertion"], certs=server.public_key_pem)  # signed by the key file's key
            with server.lock:
                server.requests.append(("POST", path, None, {"grant_type": form["grant_type"], "claims": claims}))
            return self._answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        body = json.loads(raw) if raw else None
        with server.lock:
            server.requests.append((self.command, path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._answer(401, _google_error(401, "Request is missing required authentication credential."))
        parts = path.removeprefix("/compute/v1/").split("/")
        with server.lock:
            if parts[:1] != ["projects"]:
                return self._answer(404, _google_error(404, f"no such path {path}"))
            if parts[2:] == ["zones"]:
                return self._answer(200, {"kind": "compute#zoneList", "items": server.zones})
            if parts[2:5] == ["global", "images", "family"]:
                if parts[5] != "debian-12":
                    return self._answer(404, _google_error(404, f"The resource '{path}' was not found"))
                return self._answer(200, {"kind": "compute#image", "name": "debian-12-bookworm-v20261201",
                                          "selfLink": f"{server.url}/compute/v1/projects/{parts[1]}/global/"
                                                      "images/debian-12-bookworm-v20261201"})
            if parts[2:5] == ["zones", "us-central1-b", "instances"]:
                if self.command == "POST" and len(parts) == 5:
                    server.instances[body["name"]] = body | {"status": "PROVISIONING", "zone": parts[3]}
                    return self._answer(200, self._operation("insert", body["name"]))
                instance = server.instances.get(parts[5]) if len(parts) == 6 else None
                if instance is None:
                    return self._answer(404, _google_error(404, f"The resource '{path}' was not found"))
                if self.command == "GET":
                    return self._answer(200, instance)
                if self.command == "DELETE":
                    del server.instances[parts[5]]
                    return self._answer(200, self._operation("delete", parts[5]))
        return self._answer(404, _google_error(404, f"The resource '{path}' was not found"))

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def compute_api(tmp_path):
    pytest.importorskip("googleapiclient")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = FakeComputeApi(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-compute-api", daemon=True)
    thread.start()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "science-project", "private_key_id": "key-1",
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
        "client_email": "parsl@science-project.iam.gserviceaccount.com", "client_id": "1234567890",
        "token_uri": f"{server.url}/token"}))
    server.key_file = str(key_file)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _google_provider(compute_api, **kwargs):
    from parsl_repro.providers import GoogleCloudProvider

    options = {"project_id": "science-project", "key_file": compute_api.key_file, "region": "us-central1",
               "os_project": "debian-cloud", "os_family": "debian-12", "launcher": SimpleLauncher(debug=False),
               "api_endpoint": f"{compute_api.url}/compute/v1/"} | kwargs
    return GoogleCloudProvider(**options)


def test_google_provider_signs_in_with_the_key_file_and_picks_the_first_zone_of_the_region_that_is_up(compute_api):
    provider = _google_provider(compute_api)
    assert provider.zone == "us-central1-b"
    token_request = compute_api.requests[0]
    assert token_request[1] == "/token"
    assert token_request[3]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = token_request[3]["claims"]
    assert claims["iss"] == "parsl@science-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/compute"
    assert compute_api.requests[1][:3] == ("GET", "/compute/v1/projects/science-project/zones",
                                           f"Bearer {ACCESS_TOKEN}")
    assert "BEGIN PRIVATE KEY" not in repr(provider)


def test_google_block_is_an_instance_whose_status_maps_to_block_states_and_cancel_deletes_it(compute_api):
    provider = _google_provider(compute_api)
    job_id = provider.submit("worker --block 0", 1, "htex.0")
    assert job_id.startswith("parslauto-")
    [(method, path, _, body)] = [r for r in compute_api.requests if r[0] == "POST" and r[1] != "/token"]
    assert path == "/compute/v1/projects/science-project/zones/us-central1-b/instances"
    image = f"{compute_api.url}/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20261201"
    assert body == google_module.instance_body(job_id, "us-central1-b", "n1-standard-1", image,
                                               '#!/bin/bash\nexport JOBNAME="htex.0"\nworker --block 0\n')
    assert provider.status([job_id])[0].state is JobState.PENDING  # PROVISIONING

    for status, state in (("STAGING", JobState.PENDING), ("RUNNING", JobState.RUNNING),
                          ("REPAIRING", JobState.UNKNOWN)):
        compute_api.instances[job_id]["status"] = status
        assert provider.status([job_id])[0].state is state
    assert provider.cancel([job_id]) == [True]
    assert job_id not in compute_api.instances
    assert provider.status([job_id])[0].state is JobState.CANCELLED
    assert provider.cancel([job_id]) == [True]  # already gone (404)


def test_google_instance_that_stops_by_itself_is_completed_and_one_deleted_elsewhere_is_cancelled(compute_api):
    provider = _google_provider(compute_api)
    stopped, deleted = provider.submit("true", 1), provider.submit("true", 1)
    compute_api.instances[stopped]["status"] = "TERMINATED"
    del compute_api.instances[deleted]
    first, second = provider.status([stopped, deleted])
    assert first.state is JobState.COMPLETED
    assert second.state is JobState.CANCELLED and "not by parsl_repro" in second.message


def test_google_image_family_that_does_not_exist_raises_submit_exception(compute_api):
    provider = _google_provider(compute_api, os_family="no-such-family")
    with pytest.raises(SubmitException, match="Compute Engine refused the instance") as caught:
        provider.submit("true", 1)
    assert caught.value.retcode == 404 and provider.resources == {}


def test_google_region_with_no_zone_up_is_a_configuration_error(compute_api):
    with pytest.raises(ConfigurationError, match=r"region 'asia-east1' has no zone that is UP.*us-central1-b"):
        _google_provider(compute_api, region="asia-east1")


def test_google_unreadable_key_file_is_a_configuration_error(compute_api, tmp_path):
    with pytest.raises(ConfigurationError, match="cannot use the service account key in key_file"):
        _google_provider(compute_api, key_file=str(tmp_path / "missing.json"))


# --- Azure --------------------------------------------------------------------------------------------

VM_REFERENCE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest",
                "vm_size": "Standard_D2s_v3", "disk_size_gb": 64, "admin_username": "parsl",
                "password": "not-a-real-password"}


def test_azure_status_table_is_parsls_plus_starting_and_deallocating():
    assert azure_module.translate_table == {
        "VM pending": JobState.PENDING, "VM starting": JobState.PENDING, "VM running": JobState.RUNNING,
        "VM deallocating": JobState.COMPLETED, "VM deallocated": JobState.COMPLETED,
        "VM stopping": JobState.COMPLETED, "VM stopped": JobState.COMPLETED}


def test_azure_startup_script_runs_worker_init_then_the_workers_then_powers_off():
    assert azure_module.render_startup_script("htex.0", "worker --block 0", "source /venv/bin/activate") == """\
#!/bin/bash
cd ~
export JOBNAME="htex.0"
source /venv/bin/activate

worker --block 0

# Power off once the workers exit, so the VM stops using its cores (a powered-off VM still
# holds its allocation and costs until it is deallocated or deleted: cancel deletes it).
if ! false
then
    shutdown -h now
fi
"""
    assert "if ! true\n" in azure_module.render_startup_script("j", "c", linger=True)


def test_azure_request_bodies_are_the_rest_apis_json():
    nic_id = "/subscriptions/s/resourceGroups/parsl.group/providers/Microsoft.Network/networkInterfaces/vm-nic"
    body = azure_module.vm_parameters("parsl-0123456789ab", "westus", nic_id, VM_REFERENCE, "#!/bin/bash\ntrue\n")
    assert body == {
        "location": "westus",
        "tags": {"parsl-block": "parsl-0123456789ab"},
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
            "storageProfile": {
                "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                                   "version": "latest"},
                "osDisk": {"createOption": "FromImage", "diskSizeGB": 64, "deleteOption": "Delete"}},
            "osProfile": {"computerName": "parsl-0123456789ab", "adminUsername": "parsl",
                          "adminPassword": "not-a-real-password", "customData": "IyEvYmluL2Jhc2gKdHJ1ZQo="},
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"deleteOption": "Delete"}}]},
        },
    }
    assert azure_module.nic_parameters("vm", "westus", "subnet-id") == {
        "location": "westus",
        "properties": {"ipConfigurations": [{"name": "vm-ip", "properties": {"subnet": {"id": "subnet-id"}}}]}}


def test_azure_vm_reference_hides_its_password_from_repr():
    shown = repr(azure_module.VMReference(VM_REFERENCE))
    assert "not-a-real-password" not in shown and "'password': '********'" in shown
    assert azure_module.VMReference(VM_REFERENCE)["password"] == "not-a-real-password"


def test_azure_vm_reference_missing_keys_is_a_configuration_error():
    from parsl_repro.providers import AzureProvider

    with pytest.raises(ConfigurationError, match="vm_reference lacks disk_size_gb, password"):
        AzureProvider({key: value for key, value in VM_REFERENCE.items() if key not in ("password", "disk_size_gb")})


class _AzureRefusal(Exception):
    """Stands for azure.core's HttpResponseError."""


class _AzureOperations:
    """One operations group of a stand-in Azure management client (``network_interfaces``,
    ``virtual_machines``, ...): records each call as ``(group, action, resource name)`` and
    answers with a poller whose ``result()`` is the made resource, or raises ``refuse``."""

    def __init__(self, group: str, calls: list, refuse: Exception | None = None) -> None:
        self.group, self.calls, self.refuse = group, calls, refuse

    def create_or_update(self, resource_group: str, *names_and_body):
        return self.begin_create_or_update(resource_group, *names_and_body).result()

    def begin_create_or_update(self, resource_group: str, *names_and_body):
        name = names_and_body[-2] if len(names_and_body) > 1 else resource_group
        self.calls.append((self.group, "create", name))
        if self.refuse is not None:
            raise self.refuse
        return SimpleNamespace(result=lambda: SimpleNamespace(id=f"/subscriptions/s/{self.group}/{name}"))

    def begin_delete(self, resource_group: str, name: str):
        self.calls.append((self.group, "delete", name))
        return SimpleNamespace(result=lambda: None)


def _stand_in_azure_sdk(calls: list, vm_refusal: Exception) -> dict:
    """What ``azure._import_azure`` returns, with clients whose calls land in ``calls`` and whose
    VM creation raises ``vm_refusal``. The Azure SDK is not installed for the tests."""
    def client(**groups: _AzureOperations):
        return lambda credential, subscription_id: SimpleNamespace(**groups)

    return {"ResourceNotFoundError": LookupError, "ClientSecretCredential": lambda **kwargs: object(),
            "ResourceManagementClient": client(resource_groups=_AzureOperations("resource_groups", calls)),
            "NetworkManagementClient": client(
                virtual_networks=_AzureOperations("virtual_networks", calls),
                subnets=_AzureOperations("subnets", calls),
                network_interfaces=_AzureOperations("network_interfaces", calls)),
            "ComputeManagementClient": client(
                virtual_machines=_AzureOperations("virtual_machines", calls, refuse=vm_refusal))}


def test_azure_vm_refused_after_its_interface_was_made_deletes_the_interface(monkeypatch):
    """Stand-in SDK clients (the SDK is not installed here) whose VM creation is refused, as for
    a quota: submit raises SubmitException with Azure's message, and the network interface it
    had just made for the VM is deleted, so a failed submit leaves nothing that costs or
    blocks deleting the network."""
    calls: list = []
    monkeypatch.setattr(azure_module, "_import_azure",
                        lambda: _stand_in_azure_sdk(calls, _AzureRefusal("QuotaExceeded: 0 cores left")))
    for key in azure_module.CREDENTIAL_KEYS:
        monkeypatch.setenv(key, "test-value")
    provider = azure_module.AzureProvider(VM_REFERENCE)

    with pytest.raises(SubmitException, match="QuotaExceeded: 0 cores left"):
        provider.submit("worker", 1)
    [(_, _, vm_name)] = [call for call in calls if call[0] == "virtual_machines"]
    assert calls[-2:] == [("virtual_machines", "create", vm_name), ("network_interfaces", "delete", f"{vm_name}-nic")]
    assert ("network_interfaces", "create", f"{vm_name}-nic") in calls
    assert provider.resources == {} and provider.instances == []
