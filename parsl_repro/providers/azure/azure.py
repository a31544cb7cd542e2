"""``AzureProvider``: blocks are Azure virtual machines.

On its first ``submit`` the provider makes (or updates) the resource group ``group_name``, a
virtual network ``vnet_name`` (``10.0.0.0/16``) and one subnet (``10.0.0.0/20``) in it. Each
block is then one network interface and one Linux VM from the ``vm_reference`` image, whose
custom data (``template.py``, run by cloud-init at first boot) runs ``worker_init`` and the
launcher's text, then powers the VM off unless ``linger``. The VM's OS disk and interface are
deleted with it. ``status`` reads the VM's power state; ``cancel`` deletes the VM.

The Azure SDK (the ``azure`` extra: azure-identity and the compute, network and resource
management libraries) is imported when a provider is built, never when this module is imported.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from string import Template
from typing import Any

from parsl_repro.errors import ConfigurationError, OptionalModuleMissing
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.azure.template import template_string
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import SubmitException
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

translate_table = {
    "VM pending": JobState.PENDING,
    "VM starting": JobState.PENDING,
    "VM running": JobState.RUNNING,
    "VM deallocating": JobState.COMPLETED,
    "VM deallocated": JobState.COMPLETED,
    "VM stopping": JobState.COMPLETED,
    "VM stopped": JobState.COMPLETED,
}
"""A VM's power state (the ``display_status`` of its ``PowerState/...`` instance-view status) as
a block state: Parsl's table plus ``VM starting`` and ``VM deallocating``. A VM with no power
state yet (still provisioning) is ``PENDING``; any other is ``UNKNOWN``."""

VM_REFERENCE_KEYS = ("publisher", "offer", "sku", "version", "vm_size", "disk_size_gb", "admin_username", "password")
"""The keys ``vm_reference`` must have."""

CREDENTIAL_KEYS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID")
"""The service principal's credentials, from ``key_file`` or the environment."""

SDK_PACKAGES = ["azure-identity", "azure-mgmt-compute", "azure-mgmt-network", "azure-mgmt-resource"]


def _import_azure() -> dict[str, Any]:
    """The Azure SDK's classes the provider uses, by name.

    Imported here rather than at the top of the module because the SDK is optional: only
    someone who builds an ``AzureProvider`` needs it installed."""
    try:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.identity import ClientSecretCredential
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient
    except ImportError as e:
        raise OptionalModuleMissing(
            SDK_PACKAGES, f"AzureProvider needs the Azure SDK ({e}); install it with: pip install 'parsl-repro[azure]'",
        ) from e
    return {"ResourceNotFoundError": ResourceNotFoundError, "ClientSecretCredential": ClientSecretCredential,
            "ComputeManagementClient": ComputeManagementClient, "NetworkManagementClient": NetworkManagementClient,
            "ResourceManagementClient": ResourceManagementClient}


class VMReference(dict):
    """``vm_reference`` as given, with the admin password hidden from ``repr`` (a provider's
    repr is logged and recorded with the run's configuration)."""

    def __repr__(self) -> str:
        return repr({key: ("********" if key == "password" else value) for key, value in self.items()})


def render_startup_script(job_name: str, command: str, worker_init: str = "", linger: bool = False) -> str:
    """The script a block's VM runs at first boot."""
    return Template(template_string).substitute(jobname=job_name, user_script=command, worker_init=worker_init,
                                                linger=str(linger).lower())


def nic_parameters(vm_name: str, location: str, subnet_id: str) -> dict[str, Any]:
    """The body of ``network_interfaces.begin_create_or_update`` for one block's VM (REST JSON)."""
    ip_configuration = {"name": f"{vm_name}-ip", "properties": {"subnet": {"id": subnet_id}}}
    return {"location": location, "properties": {"ipConfigurations": [ip_configuration]}}


def vm_parameters(vm_name: str, location: str, nic_id: str, vm_reference: dict[str, Any],
                  startup_script: str) -> dict[str, Any]:
    """The body of ``virtual_machines.begin_create_or_update`` for one block's VM.

    Written as the REST API's JSON (``properties``, camelCase), which the current SDKs send as
    it is and older ones read too. The OS disk (``disk_size_gb``) and the network interface are
    deleted with the VM; the script goes in base64 as custom data."""
    return {
        "location": location,
        "tags": {"parsl-block": vm_name},
        "properties": {
            "hardwareProfile": {"vmSize": vm_reference["vm_size"]},
            "storageProfile": {
                "imageReference": {key: vm_reference[key] for key in ("publisher", "offer", "sku", "version")},
                "osDisk": {"createOption": "FromImage", "diskSizeGB": vm_reference["disk_size_gb"],
                           "deleteOption": "Delete"},
            },
            "osProfile": {
                "computerName": vm_name,
                "adminUsername": vm_reference["admin_username"],
                "adminPassword": vm_reference["password"],
                "customData": base64.b64encode(startup_script.encode()).decode(),
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"deleteOption": "Delete"}}]},
        },
    }


class AzureProvider(ExecutionProvider, RepresentationMixin):
    """Blocks as Linux VMs in one Azure resource group.

    Credentials are a service principal's ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``,
    ``AZURE_TENANT_ID`` and ``AZURE_SUBSCRIPTION_ID``, read from ``key_file`` (a JSON object
    with those keys) or else from environment variables of those names.

    Parameters (Parsl's, with Parsl's defaults)
    -------------------------------------------
    vm_reference : the VMs' image and size: ``publisher``, ``offer``, ``sku``, ``version`` (the
        marketplace image), ``vm_size`` (e.g. ``"Standard_D2s_v3"``), ``disk_size_gb`` (the OS
        disk), ``admin_username`` and ``password``. The image must hold Python and parsl_repro,
        or ``worker_init`` must install them.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    worker_init : shell lines run at boot before the workers start.
    location : the Azure region.
    group_name : the resource group everything is made in.
    key_name : accepted for Parsl compatibility and not used (VMs log in with ``password``).
    key_file : the credentials file described above.
    vnet_name : the virtual network's name.
    linger : leave VMs running after their workers exit, and refuse ``cancel``.
    launcher : how the startup script starts ``tasks_per_node`` copies of the worker command.

    The job id is the VM's name, ``parsl-<12 hex digits>``; ``resources[name]`` holds ``job_id``,
    ``nic_id`` and ``status``.
    """

    @typechecked_config
    def __init__(self, vm_reference: dict[str, Any], init_blocks: int = 1, min_blocks: int = 0,
                 max_blocks: int = 10, parallelism: float = 1, worker_init: str = "", location: str = "westus",
                 group_name: str = "parsl.group", key_name: str | None = None, key_file: str | None = None,
                 vnet_name: str = "parsl.vnet", linger: bool = False,
                 launcher: Launcher = SingleNodeLauncher()) -> None:
        missing = [key for key in VM_REFERENCE_KEYS if key not in vm_reference]
        if missing:
            raise ConfigurationError(f"AzureProvider: vm_reference lacks {', '.join(missing)}")
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
        sdk = _import_azure()
        self.vm_reference = VMReference(vm_reference)
        self.init_blocks = init_blocks
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.max_nodes = max_blocks
        self.parallelism = parallelism
        self.nodes_per_block = 1
        self.worker_init = worker_init
        self.location = location
        self.group_name = group_name
        self.key_name = key_name
        self.key_file = key_file
        self.vnet_name = vnet_name
        self.linger = linger
        self.launcher = launcher
        self.script_dir: str | None = None
        self.resources: dict[str, dict[str, Any]] = {}
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None
        self.instances: list[str] = []
        self._label = "azure"
        self._lock = threading.Lock()
        self._subnet_id: str | None = None
        self._not_found = sdk["ResourceNotFoundError"]

        keys = self._read_credentials()
        credential = sdk["ClientSecretCredential"](tenant_id=keys["AZURE_TENANT_ID"],
                                                   client_id=keys["AZURE_CLIENT_ID"],
                                                   client_secret=keys["AZURE_CLIENT_SECRET"])
        subscription_id = keys["AZURE_SUBSCRIPTION_ID"]
        self.resource_client = sdk["ResourceManagementClient"](credential, subscription_id)
        self.compute_client = sdk["ComputeManagementClient"](credential, subscription_id)
        self.network_client = sdk["NetworkManagementClient"](credential, subscription_id)

    def _read_credentials(self) -> dict[str, str]:
        if self.key_file is not None:
            try:
                with open(self.key_file) as f:
                    keys = json.load(f)
            except (OSError, ValueError) as e:
                raise ConfigurationError(f"AzureProvider: cannot read key_file {self.key_file!r}: {e}") from e
            source = f"key_file {self.key_file!r}"
        else:
            keys = {key: os.environ[key] for key in CREDENTIAL_KEYS if key in os.environ}
            source = "the environment"
        missing = [key for key in CREDENTIAL_KEYS if not keys.get(key)]
        if missing:
            raise ConfigurationError(f"AzureProvider: {source} lacks {', '.join(missing)}; set them there, "
                                     "or name a key_file holding all four")
        return keys

    @property
    def label(self) -> str:
        return self._label

    @property
    def status_polling_interval(self) -> int:
        return 60

    def _network(self) -> str:
        """The subnet's id, making the resource group, virtual network and subnet the first time."""
        if self._subnet_id is None:
            self.resource_client.resource_groups.create_or_update(self.group_name, {"location": self.location})
            self.network_client.virtual_networks.begin_create_or_update(
                self.group_name, self.vnet_name,
                {"location": self.location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}},
            ).result()
            subnet = self.network_client.subnets.begin_create_or_update(
                self.group_name, self.vnet_name, f"{self.group_name}.subnet",
                {"properties": {"addressPrefix": "10.0.0.0/20"}}).result()
            self._subnet_id = subnet.id
        return self._subnet_id

    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.azure") -> str:
        """Create the block's network interface and VM (waiting until Azure has made them);
        returns the VM's name. Raises ``SubmitException`` with Azure's message when refused; when
        the VM is refused after its interface was made, the interface is deleted first (the
        message says so if that fails too), so a failed submit leaves nothing behind."""
        vm_name = f"parsl-{uuid.uuid4().hex[:12]}"
        script = render_startup_script(job_name, self.launcher(command, tasks_per_node, 1, ""), self.worker_init,
                                       self.linger)
        nic_name = f"{vm_name}-nic"
        try:
            subnet_id = self._network()
            nic = self.network_client.network_interfaces.begin_create_or_update(
                self.group_name, nic_name, nic_parameters(vm_name, self.location, subnet_id)).result()
        except Exception as e:  # azure.core's HttpResponseError, or the credential's ClientAuthenticationError
            raise SubmitException(job_name, f"Azure refused the network interface of VM {vm_name}: {e}") from e
        try:
            self.compute_client.virtual_machines.begin_create_or_update(
                self.group_name, vm_name, vm_parameters(vm_name, self.location, nic.id, self.vm_reference, script),
            ).result()
        except Exception as e:
            # the interface is deleted with its VM, but there is no VM: delete it here, or it stays
            raise SubmitException(job_name, f"Azure refused VM {vm_name}: {e}{self._delete_nic(nic_name)}") from e
        with self._lock:
            self.instances.append(vm_name)
            self.resources[vm_name] = {"job_id": vm_name, "nic_id": nic.id, "status": JobStatus(JobState.PENDING)}
        logger.info("Created VM %s in resource group %s", vm_name, self.group_name)
        return vm_name

    def _delete_nic(self, nic_name: str) -> str:
        """Delete the network interface ``nic_name`` (made for a VM that could not be created),
        waiting for Azure to finish; empty when that worked, else a sentence for the error
        message saying what is left behind (also logged)."""
        try:
            self.network_client.network_interfaces.begin_delete(self.group_name, nic_name).result()
        except self._not_found:
            return ""
        except Exception as e:
            logger.warning("Could not delete network interface %s of a VM that was not created: %s", nic_name, e)
            return f"; its network interface {nic_name} could not be deleted ({e}): delete it in {self.group_name}"
        logger.debug("Deleted network interface %s: its VM was not created", nic_name)
        return ""

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """Each job's status, from its VM's power state (``translate_table``). A VM that is gone
        without ``cancel`` is ``CANCELLED`` with a message saying so; when Azure cannot be
        asked, the last known status stays."""
        with self._lock:
            active = [job_id for job_id, record in self.resources.items() if not record["status"].terminal]
        for vm_name in active:
            try:
                view = self.compute_client.virtual_machines.instance_view(self.group_name, vm_name)
            except self._not_found:
                new_status = JobStatus(JobState.CANCELLED, message=f"VM {vm_name} was deleted, not by parsl_repro")
            except Exception as e:
                logger.warning("Could not read VM %s: %s", vm_name, e)
                continue
            else:
                power = [s.display_status for s in (view.statuses or []) if (s.code or "").startswith("PowerState/")]
                new_status = JobStatus(translate_table.get(power[0], JobState.UNKNOWN) if power else JobState.PENDING)
            with self._lock:
                if not self.resources[vm_name]["status"].terminal:
                    self.resources[vm_name]["status"] = new_status
        with self._lock:
            return [self.resources[str(job_id)]["status"] for job_id in job_ids]

    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """Start deleting each job's VM (with its disk and interface) without waiting for it to
        finish; its status becomes ``CANCELLED``. All False when ``linger`` is set."""
        if self.linger:
            logger.debug("Ignoring cancel of %s: linger is set", list(job_ids))
            return [False] * len(job_ids)
        results = []
        for job_id in job_ids:
            try:
                self.compute_client.virtual_machines.begin_delete(self.group_name, str(job_id))
            except self._not_found:
                pass
            except Exception as e:
                logger.warning("Could not delete VM %s: %s", job_id, e)
                results.append(False)
                continue
            with self._lock:
                self.resources[str(job_id)]["status"] = JobStatus(JobState.CANCELLED)
                if job_id in self.instances:
                    self.instances.remove(job_id)
            results.append(True)
        return results
