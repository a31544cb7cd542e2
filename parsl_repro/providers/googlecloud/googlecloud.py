"""``GoogleCloudProvider``: blocks are Google Compute Engine instances.

Each block is one instance in the first zone of ``region`` that is up, booted from the newest
image of ``os_family`` in ``os_project``, whose ``startup-script`` metadata runs the launcher's
text (the instance's guest agent runs it at boot). ``status`` reads the instance's status,
``cancel`` deletes the instance.

The Compute API is reached with google-api-python-client and google-auth (the ``google_cloud``
extra), using the service account key in ``key_file`` and the discovery document shipped inside
the client library (no discovery request is made). They are imported when a provider is built,
never when this module is imported.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from parsl_repro.errors import ConfigurationError, OptionalModuleMissing
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import SubmitException
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

translate_table = {
    "PENDING": JobState.PENDING,
    "PROVISIONING": JobState.PENDING,
    "STAGING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "DONE": JobState.COMPLETED,
    "STOPPING": JobState.COMPLETED,
    "STOPPED": JobState.COMPLETED,
    "TERMINATED": JobState.COMPLETED,
    "SUSPENDING": JobState.COMPLETED,
    "SUSPENDED": JobState.COMPLETED,
}
"""Compute Engine instance statuses as block states (Parsl's table, which also holds the
``PENDING``/``DONE`` of operations); any other status (``REPAIRING``) is ``UNKNOWN``."""

COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute"
"""The OAuth scope the provider's credentials ask for: read and change Compute Engine resources."""

INSTANCE_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write",
                   "https://www.googleapis.com/auth/logging.write"]
"""What the instances' own (default) service account may do: read and write Cloud Storage, write logs."""

STARTUP_SCRIPT = "#!/bin/bash\nexport JOBNAME=\"{job_name}\"\n{command}\n"
"""The instance's ``startup-script`` metadata, around the launcher's text."""


def _import_google() -> tuple[Any, Any, Any]:
    """googleapiclient's ``discovery`` and ``errors`` modules and google-auth's ``service_account``.

    Imported here rather than at the top of the module because they are optional: only someone
    who builds a ``GoogleCloudProvider`` needs them installed."""
    try:
        import googleapiclient.discovery
        import googleapiclient.errors
        from google.oauth2 import service_account
    except ImportError as e:
        raise OptionalModuleMissing(
            ["googleapiclient", "google.auth"],
            f"GoogleCloudProvider needs google-api-python-client and google-auth ({e}); "
            "install them with: pip install 'parsl-repro[google_cloud]'") from e
    return googleapiclient.discovery, googleapiclient.errors, service_account


def instance_body(name: str, zone: str, instance_type: str, source_image: str, startup_script: str) -> dict[str, Any]:
    """The body of ``instances.insert`` for one block's instance.

    A boot disk from ``source_image`` deleted with the instance; the project's ``default``
    network with an external address (workers connect out to the executor); the default
    service account with ``INSTANCE_SCOPES``; the block's script as ``startup-script``."""
    return {
        "name": name,
        "machineType": f"zones/{zone}/machineTypes/{instance_type}",
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": source_image}}],
        "networkInterfaces": [{"network": "global/networks/default",
                               "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]}],
        "serviceAccounts": [{"email": "default", "scopes": list(INSTANCE_SCOPES)}],
        "metadata": {"items": [{"key": "startup-script", "value": startup_script}]},
        "labels": {"parsl-block": "true"},
    }


class GoogleCloudProvider(ExecutionProvider, RepresentationMixin):
    """Blocks as Compute Engine instances in one zone.

    Parameters (Parsl's, with Parsl's defaults)
    -------------------------------------------
    project_id : the Google Cloud project the instances are made in.
    key_file : a service account key (JSON) allowed to manage Compute Engine in that project.
    region : e.g. ``"us-central1"``; the provider uses its first zone that is ``UP``.
    os_project, os_family : the image family instances boot from, e.g. ``"debian-cloud"``,
        ``"debian-12"``; it must hold Python and parsl_repro (or the workers' command installs them).
    google_version : the Compute API version, ``"v1"`` or ``"beta"``.
    instance_type : the machine type, e.g. ``"n1-standard-1"``.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    launcher : how the startup script starts ``tasks_per_node`` copies of the worker command.
    api_endpoint : not in Parsl: the Compute API's base URL, ending in the service path
        (``https://compute.googleapis.com/compute/v1/`` is the default); for a private endpoint,
        or the tests' local stand-in.

    The job id is the instance's name, ``parslauto-<12 hex digits>``; ``resources[name]`` holds
    ``job_id`` and ``status``.
    """

    @typechecked_config
    def __init__(self, project_id: str, key_file: str, region: str, os_project: str, os_family: str,
                 google_version: str = "v1", instance_type: str = "n1-standard-1", init_blocks: int = 1,
                 min_blocks: int = 0, max_blocks: int = 10, launcher: Launcher = SingleNodeLauncher(),
                 parallelism: float = 1, api_endpoint: str | None = None) -> None:
        discovery, self._google_errors, service_account = _import_google()
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
        self.project_id = project_id
        self.key_file = key_file
        self.region = region
        self.os_project = os_project
        self.os_family = os_family
        self.google_version = google_version
        self.instance_type = instance_type
        self.init_blocks = init_blocks
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.nodes_per_block = 1
        self.launcher = launcher
        self.parallelism = parallelism
        self.api_endpoint = api_endpoint
        self.script_dir: str | None = None
        self.resources: dict[str, dict[str, Any]] = {}
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None
        self._lock = threading.Lock()
        try:
            credentials = service_account.Credentials.from_service_account_file(key_file, scopes=[COMPUTE_SCOPE])
        except (OSError, ValueError, KeyError) as e:
            raise ConfigurationError(f"GoogleCloudProvider: cannot use the service account key in key_file "
                                     f"{key_file!r}: {e}") from e
        self.client = discovery.build("compute", google_version, credentials=credentials, cache_discovery=False,
                                      static_discovery=True,
                                      client_options={"api_endpoint": api_endpoint} if api_endpoint else None)
        self.zone = self.get_zone(region)

    @property
    def label(self) -> str:
        return "google_cloud"

    @property
    def status_polling_interval(self) -> int:
        return 60

    def get_zone(self, region: str) -> str:
        """The first zone of ``region`` whose status is ``UP``; ``ConfigurationError`` if none is."""
        try:
            zones = self.client.zones().list(project=self.project_id).execute().get("items", [])
        except self._google_errors.HttpError as e:
            raise ConfigurationError(f"GoogleCloudProvider: cannot list the zones of project {self.project_id!r}: "
                                     f"{e}") from e
        for zone in zones:
            if zone["name"].startswith(f"{region}-") and zone.get("status") == "UP":
                return zone["name"]
        raise ConfigurationError(f"GoogleCloudProvider: region {region!r} has no zone that is UP in project "
                                 f"{self.project_id!r} (zones: {', '.join(z['name'] for z in zones) or 'none'})")

    def create_instance(self, command: str = "", job_name: str = "parsl.gcs") -> tuple[dict[str, Any], str]:
        """Ask for one instance running ``command`` at boot; returns the insert operation and the
        instance's name."""
        name = f"parslauto-{uuid.uuid4().hex[:12]}"
        image = self.client.images().getFromFamily(project=self.os_project, family=self.os_family).execute()
        body = instance_body(name, self.zone, self.instance_type, image["selfLink"],
                             STARTUP_SCRIPT.format(job_name=job_name, command=command))
        operation = self.client.instances().insert(project=self.project_id, zone=self.zone, body=body).execute()
        return operation, name

    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.gcs") -> str:
        """Create the block's instance; returns its name. Raises ``SubmitException`` with the
        API's status code when the image family or the instance is refused."""
        wrapped = self.launcher(command, tasks_per_node, 1, "")
        try:
            _, name = self.create_instance(wrapped, job_name)
        except self._google_errors.HttpError as e:
            raise SubmitException(job_name, f"Compute Engine refused the instance: {e}",
                                  retcode=e.resp.status) from e
        with self._lock:
            self.resources[name] = {"job_id": name, "status": JobStatus(JobState.PENDING)}
        logger.info("Asked for instance %s (%s) in %s", name, self.instance_type, self.zone)
        return name

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """Each job's status, from its instance's status (``translate_table``). An instance that
        is gone without ``cancel`` is ``CANCELLED`` with a message saying so; when the API
        cannot be asked, the last known status stays."""
        with self._lock:
            active = [job_id for job_id, record in self.resources.items() if not record["status"].terminal]
        for name in active:
            try:
                instance = self.client.instances().get(instance=name, project=self.project_id,
                                                       zone=self.zone).execute()
                new_status = JobStatus(translate_table.get(instance["status"], JobState.UNKNOWN),
                                       message=instance.get("statusMessage"))
            except self._google_errors.HttpError as e:
                if e.resp.status != 404:
                    logger.warning("Could not read instance %s: %s", name, e)
                    continue
                new_status = JobStatus(JobState.CANCELLED, message=f"instance {name} was deleted, not by parsl_repro")
            except Exception as e:  # the API unreachable: ask again at the next poll
                logger.warning("Could not read instance %s: %s", name, e)
                continue
            with self._lock:
                if not self.resources[name]["status"].terminal:  # cancel() may have got there first
                    self.resources[name]["status"] = new_status
        with self._lock:
            return [self.resources[str(job_id)]["status"] for job_id in job_ids]

    def delete_instance(self, name: str) -> dict[str, Any]:
        """Ask for the instance to be deleted; returns the delete operation."""
        return self.client.instances().delete(project=self.project_id, zone=self.zone, instance=name).execute()

    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """Delete each job's instance; True when deleted or already gone (its status becomes
        ``CANCELLED``), False when the API refused or could not be reached."""
        results = []
        for job_id in job_ids:
            try:
                self.delete_instance(str(job_id))
            except self._google_errors.HttpError as e:
                if e.resp.status != 404:
                    logger.warning("Could not delete instance %s: %s", job_id, e)
                    results.append(False)
                    continue
            except Exception as e:
                logger.warning("Could not delete instance %s: %s", job_id, e)
                results.append(False)
                continue
            with self._lock:
                self.resources[str(job_id)]["status"] = JobStatus(JobState.CANCELLED)
            results.append(True)
        return results
