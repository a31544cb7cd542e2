"""Ready-made configurations, as in Parsl's ``parsl.configs``: import one and load it.

    from parsl_repro.configs.local_threads import config
    parsl_repro.load(config)

Each module defines one module-level ``config`` (a ``parsl_repro.config.Config``) with the
values Parsl's module of the same name uses. The site modules are templates: copy the file and
replace the placeholders (``YOUR_PARTITION``, ``YOUR_ALLOCATION_ON_...``, paths, ``worker_init``)
before loading it on that site. Importing any of them never fails, so they can be read on a
laptop: where Parsl asks a site network interface for the workers' address
(``address_by_interface('bond0')``), these modules call ``address_by_interface_or_hostname``,
which falls back to this host's address when the interface does not exist here.

Provided (every Parsl config whose executors and providers parsl_repro has):

* ``local_threads``: one ``ThreadPoolExecutor``.
* ``htex_local``: a ``HighThroughputExecutor`` with one ``LocalProvider`` block on this machine.
* Slurm sites, each a ``HighThroughputExecutor`` on ``SlurmProvider`` blocks started with
  ``SrunLauncher``: ``anvil`` (Purdue, GPU partition), ``bridges`` (PSC), ``delta`` (NCSA, A100
  GPUs), ``expanse`` (SDSC), ``frontera`` (TACC), ``illinoiscluster`` (UIUC Campus Cluster),
  ``midway`` (UChicago RCC) and ``stampede2`` (TACC; Parsl's version also sets
  ``storage_access=[GlobusStaging(...)]``, which parsl_repro lacks, so this one keeps the default
  staging providers and ``globus://`` files cannot be staged).

Skipped, because parsl_repro lacks what they use:

* ``ASPIRE1``, ``improv``, ``polaris``: ``PBSProProvider``.
* ``Azure``: ``AzureProvider``.
* ``cc_in2p3``: ``GridEngineProvider``.
* ``ec2``: ``AWSProvider``.
* ``kubernetes``: ``KubernetesProvider``.
* ``osg``: ``CondorProvider``.
* ``summit``: ``LSFProvider`` (its ``JsrunLauncher`` exists here, the provider does not).
* ``toss3_llnl``: ``FluxExecutor`` (its ``SlurmProvider`` and ``SrunLauncher`` exist here).
* ``gc_tutorial``, ``gc_multisite``: ``GlobusComputeExecutor`` and the Globus Compute SDK.
* ``wqex_local``: ``WorkQueueExecutor``; ``vineex_local``: ``TaskVineExecutor``.
"""
from __future__ import annotations

import logging

from parsl_repro.addresses import address_by_hostname, address_by_interface
from parsl_repro.errors import OptionalModuleMissing

logger = logging.getLogger(__name__)

PROVIDED = ("local_threads", "htex_local", "anvil", "bridges", "delta", "expanse", "frontera", "illinoiscluster",
            "midway", "stampede2")
"""The config modules in this package."""

SKIPPED = {
    "ASPIRE1": "PBSProProvider", "improv": "PBSProProvider", "polaris": "PBSProProvider",
    "Azure": "AzureProvider", "cc_in2p3": "GridEngineProvider", "ec2": "AWSProvider",
    "kubernetes": "KubernetesProvider", "osg": "CondorProvider", "summit": "LSFProvider",
    "toss3_llnl": "FluxExecutor", "gc_tutorial": "GlobusComputeExecutor", "gc_multisite": "GlobusComputeExecutor",
    "wqex_local": "WorkQueueExecutor", "vineex_local": "TaskVineExecutor",
}
"""Parsl's config modules that are not provided, with what parsl_repro lacks for each."""

LOOPBACK = "127.0.0.1"


def address_by_interface_or_hostname(ifname: str) -> str:
    """The IPv4 address of interface ``ifname`` when this host has it (as on the site the config
    is written for); else the address this host's name resolves to; else ``127.0.0.1``.

    Parsl's site configs call ``address_by_interface`` at import, which raises on any other
    machine; the fallback lets the module be imported (and read) anywhere. It is logged as a
    warning, since workers on other nodes may not reach the fallback address.
    """
    try:
        return address_by_interface(ifname)
    except (OSError, OptionalModuleMissing) as e:
        reason = e
    try:
        address = address_by_hostname()
    except OSError as e:
        logger.warning("No usable interface %r (%s) and this host's name does not resolve (%s); "
                       "using %s as the workers' address", ifname, reason, e, LOOPBACK)
        return LOOPBACK
    logger.warning("No usable interface %r (%s); using this host's address %s for the workers instead",
                   ifname, reason, address)
    return address
