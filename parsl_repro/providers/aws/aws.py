"""``AWSProvider``: blocks are Amazon EC2 instances.

Building the provider sets up a network of its own in ``region``, once, and records it in a
state file (``state_file``) so that later runs reuse it instead of making another:

* a VPC (``10.0.0.0/16``) with an internet gateway and a route table sending ``0.0.0.0/0`` to it;
* one subnet (``10.0.16*k.0/20``) per available zone, giving instances public addresses;
* a security group open to TCP and UDP within the VPC and to ICMP and SSH from anywhere.

Each block is one instance launched in the first subnet whose zone offers ``instance_type``,
with user data (``template.py``) that runs ``worker_init`` and the launcher's text, then powers
the instance off (which terminates it) unless ``linger``. ``status`` reads instance states,
``cancel`` terminates instances, and ``teardown()`` removes the instances and the whole network
and deletes the state file; nothing calls ``teardown()`` for you.

boto3 (the ``aws`` extra) is imported when a provider is built, never when this module is
imported. The EC2 endpoint is boto3's choice: AWS's for the region, or the one named by
``AWS_ENDPOINT_URL_EC2`` / ``AWS_ENDPOINT_URL`` (how the tests point it at a local stand-in).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from string import Template
from typing import Any

from parsl_repro.errors import ConfigurationError, OptionalModuleMissing
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.aws.template import template_string
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import ExecutionProviderException, SubmitException
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

translate_table = {
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "terminated": JobState.COMPLETED,
    "shutting-down": JobState.COMPLETED,
    "stopping": JobState.COMPLETED,  # only if someone stops the instance by hand
    "stopped": JobState.COMPLETED,
}
"""EC2 instance states as block states (an instance's end is its block's end); any other
state is ``UNKNOWN``. A block cancelled through ``cancel`` is ``CANCELLED`` instead."""

VPC_CIDR = "10.0.0.0/16"


def _import_boto3() -> tuple[Any, Any]:
    """boto3, and botocore's exceptions module.

    Imported here rather than at the top of the module because boto3 is optional: only
    someone who builds an ``AWSProvider`` needs it installed."""
    try:
        import boto3
        import botocore.exceptions
    except ImportError as e:
        raise OptionalModuleMissing(
            ["boto3"], f"AWSProvider needs boto3 ({e}); install it with: pip install 'parsl-repro[aws]'") from e
    return boto3, botocore.exceptions


def create_name_tag_spec(resource_type: str, name: str) -> list[dict[str, Any]]:
    """The ``TagSpecifications`` that name a new resource of ``resource_type``."""
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


class AWSProvider(ExecutionProvider, RepresentationMixin):
    """Blocks as EC2 instances, in a VPC the provider makes (or reuses from ``state_file``).

    Credentials come from exactly one of: ``key_file``, ``profile`` (in ``~/.aws/config``), or
    the ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (and optionally
    ``AWS_SESSION_TOKEN``) environment variables; with none of them the provider refuses to
    start.

    Parameters (Parsl's, with Parsl's defaults)
    -------------------------------------------
    image_id : the AMI every instance boots; it must hold Python and parsl_repro, or
        ``worker_init`` must install them.
    key_name : the EC2 key pair allowed to SSH in (for debugging); None for no key.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    nodes_per_block : passed to the launcher; a block is always one instance.
    worker_init : shell lines run in the user data before the workers start.
    instance_type : e.g. ``"t2.small"``.
    region : the AWS region of the network and instances.
    spot_max_bid : above 0, ask for one-time spot instances at most at this price (USD/hour).
    key_file : a JSON file with ``AWSAccessKeyId`` and ``AWSSecretKey`` (or boto3's own names
        ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``).
    profile : a profile name from the AWS config files.
    iam_instance_profile_arn : an instance profile (IAM role) for the instances; empty for none.
    state_file : where the ids of the network and instances are kept between runs (default
        ``awsproviderstate.json`` in the working directory).
    walltime : accepted as in Parsl and not enforced: an instance runs until its workers exit.
    linger : keep instances after their workers exit, and refuse ``cancel``; you stop them.
    launcher : how the user data starts ``tasks_per_node`` copies of the worker command.

    ``resources[instance_id]`` holds ``job_id`` (the instance id), ``job_name`` and ``status``.
    """

    @typechecked_config
    def __init__(self, image_id: str, key_name: str | None, init_blocks: int = 1, min_blocks: int = 0,
                 max_blocks: int = 10, nodes_per_block: int = 1, parallelism: float = 1, worker_init: str = "",
                 instance_type: str = "t2.small", region: str = "us-east-2", spot_max_bid: float = 0,
                 key_file: str | None = None, profile: str | None = None, iam_instance_profile_arn: str = "",
                 state_file: str | None = None, walltime: str = "01:00:00", linger: bool = False,
                 launcher: Launcher = SingleNodeLauncher()) -> None:
        self._boto3, self._botocore_errors = _import_boto3()
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
        self.image_id = image_id
        self.key_name = key_name
        self.init_blocks = init_blocks
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.nodes_per_block = nodes_per_block
        self.max_nodes = max_blocks * nodes_per_block
        self.parallelism = parallelism
        self.worker_init = worker_init
        self.instance_type = instance_type
        self.region = region
        self.spot_max_bid = spot_max_bid
        self.key_file = key_file
        self.profile = profile
        self.iam_instance_profile_arn = iam_instance_profile_arn
        self.state_file = state_file if state_file is not None else "awsproviderstate.json"
        self.walltime = walltime
        self.linger = linger
        self.launcher = launcher
        self.script_dir: str | None = None
        self.resources: dict[str, dict[str, Any]] = {}
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None
        self._label = "ec2"
        self._lock = threading.Lock()
        # what this provider made, by id; None (or empty) once deleted
        self.vpc_id: str | None = None
        self.internet_gateway: str | None = None
        self.route_table: str | None = None
        self.sn_ids: list[str] = []
        self.sg_id: str | None = None
        self.instances: list[str] = []

        env_specified = os.getenv("AWS_ACCESS_KEY_ID") is not None and os.getenv("AWS_SECRET_ACCESS_KEY") is not None
        if profile is None and key_file is None and not env_specified:
            raise ConfigurationError("AWSProvider: no credentials: set 'profile' or 'key_file', or the "
                                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables")
        self.session = self.create_session()
        self.client = self.session.client("ec2")
        if os.path.exists(self.state_file):
            self.read_state_file(self.state_file)
        else:
            logger.info("No AWSProvider state file %s: creating a new VPC in %s", self.state_file, region)
            self.create_vpc()
            self.write_state_file()

    @property
    def label(self) -> str:
        return self._label

    @property
    def status_polling_interval(self) -> int:
        return 60

    # --- session and state file ---------------------------------------------------------------------
    def create_session(self) -> Any:
        """A boto3 session for ``region`` with the credentials chosen (see the class docstring)."""
        if self.key_file is not None:
            path = os.path.expandvars(os.path.expanduser(self.key_file))
            try:
                with open(path) as f:
                    keys = json.load(f)
            except (OSError, ValueError) as e:
                raise ConfigurationError(f"AWSProvider: cannot read the credentials in key_file {path!r}: {e}") from e
            if not isinstance(keys, dict):
                raise ConfigurationError(f"AWSProvider: key_file {path!r} must hold a JSON object")
            access_key = keys.get("AWSAccessKeyId", keys.get("aws_access_key_id"))
            secret_key = keys.get("AWSSecretKey", keys.get("aws_secret_access_key"))
            if not access_key or not secret_key:
                raise ConfigurationError(f"AWSProvider: key_file {path!r} lacks 'AWSAccessKeyId' and "
                                         "'AWSSecretKey' (or 'aws_access_key_id' and 'aws_secret_access_key')")
            logger.debug("AWSProvider: credentials from key file %s", path)
            return self._boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                               aws_session_token=keys.get("aws_session_token"),
                                               region_name=self.region)
        if self.profile is not None:
            logger.debug("AWSProvider: credentials from profile %s", self.profile)
            return self._boto3.session.Session(profile_name=self.profile, region_name=self.region)
        logger.debug("AWSProvider: credentials from environment variables")
        return self._boto3.session.Session(region_name=self.region)

    def read_state_file(self, state_file: str) -> None:
        """Reuse the network (and any instances) recorded by an earlier run."""
        try:
            with open(state_file) as f:
                state = json.load(f)
            self.vpc_id = state["vpcID"]
            self.sg_id = state["sgID"]
            self.sn_ids = list(state["snIDs"])
            self.instances = list(state["instances"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigurationError(f"AWSProvider: state file {state_file!r} is unreadable ({e!r}); "
                                     "delete it to make a new network, after removing the old one") from e
        self.internet_gateway = state.get("igwID")
        self.route_table = state.get("rtID")
        for instance_id in self.instances:
            self.resources[instance_id] = {"job_id": instance_id, "job_name": None,
                                           "status": JobStatus(JobState.UNKNOWN)}
        logger.info("AWSProvider reuses VPC %s from %s (%d instances recorded)", self.vpc_id, state_file,
                    len(self.instances))

    def write_state_file(self) -> None:
        """Record the ids of what this provider made, for reuse by later runs and for teardown."""
        with self._lock:
            state = {"vpcID": self.vpc_id, "sgID": self.sg_id, "snIDs": self.sn_ids, "igwID": self.internet_gateway,
                     "rtID": self.route_table, "instances": list(self.instances),
                     "instanceState": {i: self.resources[i]["status"].state.name for i in self.instances}}
            with open(self.state_file, "w") as f:
                json.dump(state, f, indent=4)

    # --- the network ----------------------------------------------------------------------------------
    def generate_aws_id(self) -> str:
        """A unique name for new resources, ``parsl.aws.<time>``."""
        return f"parsl.aws.{time.time()}"

    def create_vpc(self) -> str:
        """Make the VPC, internet gateway, route table, subnets and security group; returns the VPC id.

        Raises ``ConfigurationError`` naming the region and endpoint when EC2 refuses (bad
        credentials, unknown region, a VPC limit reached), after deleting whatever it had made."""
        name = self.generate_aws_id()
        try:
            self.vpc_id = self.client.create_vpc(CidrBlock=VPC_CIDR,
                                                 TagSpecifications=create_name_tag_spec("vpc", name))["Vpc"]["VpcId"]
            self.internet_gateway = self.client.create_internet_gateway(
                TagSpecifications=create_name_tag_spec("internet-gateway", name),
            )["InternetGateway"]["InternetGatewayId"]
            self.client.attach_internet_gateway(InternetGatewayId=self.internet_gateway, VpcId=self.vpc_id)
            self.route_table = self.config_route_table(self.vpc_id, self.internet_gateway)
            zones = self.client.describe_availability_zones()["AvailabilityZones"]
            for number, zone in enumerate(zones):
                if zone["State"] != "available":
                    logger.info("Availability zone %s is %s: no subnet there", zone["ZoneName"], zone["State"])
                    continue
                subnet_id = self.client.create_subnet(
                    VpcId=self.vpc_id, CidrBlock=f"10.0.{16 * number}.0/20", AvailabilityZone=zone["ZoneName"],
                    TagSpecifications=create_name_tag_spec("subnet", f"{name}.{zone['ZoneName']}"),
                )["Subnet"]["SubnetId"]
                self.sn_ids.append(subnet_id)
                self.client.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
                self.client.associate_route_table(RouteTableId=self.route_table, SubnetId=subnet_id)
            self.sg_id = self.security_group(self.vpc_id, name)
        except Exception as e:  # boto3's errors have no common base (ClientError, BotoCoreError, parser errors)
            endpoint = self.client.meta.endpoint_url
            leftovers = self._delete_network()
            raise ConfigurationError(
                f"AWSProvider: could not create its network in region {self.region!r} at {endpoint}: "
                f"{type(e).__name__}: {e}. Check the region and the credentials"
                + (f"; these could not be deleted again: {', '.join(leftovers)}" if leftovers else "")) from e
        logger.info("AWSProvider made VPC %s with %d subnets and security group %s", self.vpc_id, len(self.sn_ids),
                    self.sg_id)
        return self.vpc_id

    def config_route_table(self, vpc_id: str, internet_gateway_id: str) -> str:
        """A route table in the VPC that sends all outside traffic through the internet gateway."""
        route_table_id = self.client.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        self.client.create_route(RouteTableId=route_table_id, DestinationCidrBlock="0.0.0.0/0",
                                 GatewayId=internet_gateway_id)
        return route_table_id

    def security_group(self, vpc_id: str, name: str) -> str:
        """The instances' security group; returns its id.

        In: all TCP and UDP from inside the VPC, ICMP and SSH (port 22) from anywhere. Out: the
        group's default rule, everything (workers connect out to the executor)."""
        group_id = self.client.create_security_group(
            GroupName="private-subnet", Description="security group for remote executors", VpcId=vpc_id,
            TagSpecifications=create_name_tag_spec("security-group", name))["GroupId"]
        inside, anywhere = [{"CidrIp": VPC_CIDR}], [{"CidrIp": "0.0.0.0/0"}]
        self.client.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": inside},
            {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "IpRanges": inside},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": anywhere},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": anywhere},
        ])
        return group_id

    def _delete_network(self) -> list[str]:
        """Delete the network pieces this provider holds ids of, each forgotten once deleted;
        returns the ids that could not be deleted (each failure is logged)."""
        failed: list[str] = []

        def attempt(resource_id: str, *calls: tuple[str, dict[str, Any]]) -> bool:
            try:
                for method, kwargs in calls:
                    getattr(self.client, method)(**kwargs)
                return True
            except Exception as e:
                logger.warning("AWSProvider could not delete %s: %s", resource_id, e)
                failed.append(resource_id)
                return False

        if self.route_table:  # a route table still associated with a subnet cannot be deleted
            try:
                [table] = self.client.describe_route_tables(RouteTableIds=[self.route_table])["RouteTables"]
                for association in table.get("Associations", []):
                    if not association.get("Main"):
                        self.client.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
            except Exception as e:  # deleting it below fails too, and says so
                logger.warning("AWSProvider could not detach route table %s from its subnets: %s", self.route_table, e)
        if self.internet_gateway and attempt(
                self.internet_gateway,
                ("detach_internet_gateway", {"InternetGatewayId": self.internet_gateway, "VpcId": self.vpc_id}),
                ("delete_internet_gateway", {"InternetGatewayId": self.internet_gateway})):
            self.internet_gateway = None
        for subnet_id in list(self.sn_ids):
            if attempt(subnet_id, ("delete_subnet", {"SubnetId": subnet_id})):
                self.sn_ids.remove(subnet_id)
        if self.route_table and attempt(self.route_table, ("delete_route_table", {"RouteTableId": self.route_table})):
            self.route_table = None
        if self.sg_id and attempt(self.sg_id, ("delete_security_group", {"GroupId": self.sg_id})):
            self.sg_id = None
        if self.vpc_id and attempt(self.vpc_id, ("delete_vpc", {"VpcId": self.vpc_id})):
            self.vpc_id = None
        return failed

    # --- blocks ---------------------------------------------------------------------------------------
    def _subnet_for_instance_type(self) -> str | None:
        offerings = self.client.describe_instance_type_offerings(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [self.instance_type]}])
        zones = {offer["Location"] for offer in offerings["InstanceTypeOfferings"]}
        subnets = self.client.describe_subnets(SubnetIds=list(self.sn_ids))["Subnets"]
        by_id = {subnet["SubnetId"]: subnet["AvailabilityZone"] for subnet in subnets}
        return next((subnet_id for subnet_id in self.sn_ids if by_id.get(subnet_id) in zones), None)

    def _unended_instances(self) -> list[str]:
        """The instances of ``self.instances`` whose block is not in a terminal state: the ones
        counted against ``max_blocks * nodes_per_block``. ``self.instances`` also keeps those
        that ended by themselves (their user data powered them off), until ``teardown()``."""
        with self._lock:
            return [i for i in self.instances if i in self.resources and not self.resources[i]["status"].terminal]

    def spin_up_instance(self, command: str, job_name: str) -> dict[str, Any]:
        """Launch one instance whose user data runs ``command``; returns EC2's description of it.

        Raises ``SubmitException`` when ``max_blocks * nodes_per_block`` instances have not
        ended (their states are asked of EC2 before refusing), no subnet's zone offers
        ``instance_type``, or EC2 refuses the launch."""
        user_data = Template(template_string).substitute(jobname=job_name, user_script=command,
                                                         linger=str(self.linger).lower(), worker_init=self.worker_init)
        running = self._unended_instances()
        if len(running) >= self.max_nodes:
            self.status(running)  # ask EC2 before refusing: some may have ended since the last poll
            running = self._unended_instances()
        if len(running) >= self.max_nodes:
            raise SubmitException(job_name, f"{len(running)} instances of this provider have not ended, the most "
                                            f"allowed (max_blocks * nodes_per_block = {self.max_nodes})")
        errors = (self._botocore_errors.ClientError, self._botocore_errors.BotoCoreError)
        try:
            subnet_id = self._subnet_for_instance_type()
            if subnet_id is None:
                raise SubmitException(job_name, f"no availability zone of {self.region} with a subnet of this "
                                                f"provider offers instance type {self.instance_type!r}")
            options: dict[str, Any] = {}
            if self.key_name:
                options["KeyName"] = self.key_name
            if self.spot_max_bid > 0:
                options["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                    "MaxPrice": str(self.spot_max_bid), "SpotInstanceType": "one-time",
                    "InstanceInterruptionBehavior": "terminate"}}
            if self.iam_instance_profile_arn:
                options["IamInstanceProfile"] = {"Arn": self.iam_instance_profile_arn}
            reservation = self.client.run_instances(
                MinCount=1, MaxCount=1, ImageId=self.image_id, InstanceType=self.instance_type, SubnetId=subnet_id,
                SecurityGroupIds=[self.sg_id], TagSpecifications=create_name_tag_spec("instance", job_name),
                InstanceInitiatedShutdownBehavior="terminate", UserData=user_data, **options)
        except errors as e:
            raise SubmitException(job_name, f"EC2 refused the instance: {e}") from e
        return reservation["Instances"][0]

    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.aws") -> str:
        """Launch the block's instance; returns its instance id. See ``spin_up_instance`` for
        the ``SubmitException`` cases."""
        job_name = f"{job_name}.{time.time()}"
        wrapped = self.launcher(command, tasks_per_node, self.nodes_per_block, "")
        instance = self.spin_up_instance(wrapped, job_name)
        instance_id = instance["InstanceId"]
        with self._lock:
            self.instances.append(instance_id)
            self.resources[instance_id] = {
                "job_id": instance_id, "job_name": job_name,
                "status": JobStatus(translate_table.get(instance["State"]["Name"], JobState.PENDING))}
        self.write_state_file()
        logger.info("Started instance %s (%s) for block %s", instance_id, self.instance_type, job_name)
        return instance_id

    def get_instance_state(self, instances: Sequence[str] | None = None) -> dict[str, str]:
        """EC2's state name (``pending``, ``running``, ...) of each instance asked about (default:
        every one in ``self.instances``: launched and not cancelled, whether or not it has ended
        by itself); instances EC2 no longer knows are left out."""
        ids = list(instances) if instances is not None else list(self.instances)
        if not ids:
            return {}
        states = {}
        paginator = self.client.get_paginator("describe_instances")
        for page in paginator.paginate(Filters=[{"Name": "instance-id", "Values": ids}]):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    states[instance["InstanceId"]] = instance["State"]["Name"]
        return states

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """Each job's status, from its instance's state (``translate_table``); an instance EC2 no
        longer lists has ended (``COMPLETED``). Jobs in a final state are not asked about again;
        when EC2 cannot be asked, the last known status stays."""
        with self._lock:
            active = [job_id for job_id, record in self.resources.items() if not record["status"].terminal]
        if active:
            try:
                states: dict[str, str] | None = self.get_instance_state(active)
            except Exception as e:  # the next poll asks again
                logger.warning("Could not read the state of instances %s: %s", active, e)
                states = None
            with self._lock:
                for instance_id in active if states is not None else []:
                    record = self.resources[instance_id]
                    if record["status"].terminal:  # cancel() may have got there first
                        continue
                    if instance_id in states:
                        state = states[instance_id]
                        record["status"] = JobStatus(translate_table.get(state, JobState.UNKNOWN), message=state)
                    else:  # EC2 forgets a terminated instance after about an hour
                        record["status"] = JobStatus(JobState.COMPLETED, message="EC2 no longer lists this instance")
        with self._lock:
            return [self.resources[str(job_id)]["status"] for job_id in job_ids]

    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """Terminate the jobs' instances; their status becomes ``CANCELLED``. All False when
        ``linger`` is set (nothing is terminated) or EC2 refuses."""
        ids = [str(job_id) for job_id in job_ids]
        if self.linger:
            logger.debug("Ignoring cancel of %s: linger is set", ids)
            return [False] * len(ids)
        if not ids:
            return []
        try:
            self.client.terminate_instances(InstanceIds=ids)
        except Exception as e:
            logger.warning("Could not terminate instances %s: %s", ids, e)
            return [False] * len(ids)
        with self._lock:
            for instance_id in ids:
                self.resources[instance_id]["status"] = JobStatus(JobState.CANCELLED)
                if instance_id in self.instances:
                    self.instances.remove(instance_id)
        self.write_state_file()
        logger.debug("Terminated instances %s", ids)
        return [True] * len(ids)

    def show_summary(self) -> str:
        """A few lines naming the network and the state of each instance in ``self.instances``
        (also logged)."""
        states = self.get_instance_state()
        summary = (f"EC2 Summary:\n\tVPC IDs: {self.vpc_id}\n\tSubnet IDs: {self.sn_ids}\n\t"
                   f"Security Group ID: {self.sg_id}\n\tRunning Instance IDs: {self.instances}\n\tInstance States:\n"
                   + "".join(f"\t\tInstance ID: {i}  State: {state}\n" for i, state in states.items()))
        logger.info("%s", summary)
        return summary

    def teardown(self) -> None:
        """Terminate every instance this provider still has, wait until they are gone, delete the
        network and then the state file. Calling it again does nothing more.

        Raises ``ExecutionProviderException`` naming what is left when EC2 refuses a deletion;
        the state file then keeps those ids, so a later ``teardown()`` can try again."""
        if self.instances:
            ids = list(self.instances)
            self.client.terminate_instances(InstanceIds=ids)
            # a subnet or security group in use by an instance cannot be deleted
            self.client.get_waiter("instance_terminated").wait(InstanceIds=ids,
                                                               WaiterConfig={"Delay": 5, "MaxAttempts": 120})
            with self._lock:
                for instance_id in ids:
                    self.resources[instance_id]["status"] = JobStatus(JobState.CANCELLED)
                self.instances = []
            logger.info("Terminated instances %s", ids)
        leftovers = self._delete_network()
        if leftovers:
            self.write_state_file()
            raise ExecutionProviderException(f"AWSProvider teardown left {', '.join(leftovers)} in "
                                             f"{self.region}; they are recorded in {self.state_file}")
        if os.path.exists(self.state_file):
            os.remove(self.state_file)
        logger.info("AWSProvider removed its network in %s", self.region)

    def goodbye(self) -> None:
        """Parsl's name for ``teardown()``."""
        self.teardown()
