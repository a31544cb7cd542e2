"""AWSProvider against moto's server mode: a real HTTP implementation of the EC2 API on loopback,
started by scripts/moto.sh, reached by boto3 through ``AWS_ENDPOINT_URL``.

Everything the provider asks EC2 for is made and checked through a second boto3 client. What
this cannot show: the instances are records in moto's memory that never boot, so the user data
is stored but never runs and no worker ever connects from an instance (their public addresses
look real and must never be contacted); nor are IAM permissions or spot prices checked.
"""
from __future__ import annotations

import base64
import json

import pytest

from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import SimpleLauncher
from parsl_repro.providers.errors import SubmitException
from tests.moto_server import MotoServer

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

from parsl_repro.providers import AWSProvider  # noqa: E402

REGION = "us-east-1"
AMI = "ami-12c6146b"


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto"), start_timeout=120)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ec2(moto_server, monkeypatch, tmp_path):
    """A fresh moto (every resource forgotten), this test's environment pointing boto3 at it with
    throwaway credentials, and a boto3 client of the test's own to look at what was made."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))  # nothing of this machine's
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.session.Session(region_name=REGION).client("ec2")


def _provider(tmp_path, **kwargs) -> AWSProvider:
    options = {"image_id": AMI, "key_name": None, "region": REGION, "state_file": str(tmp_path / "state.json"),
               "launcher": SimpleLauncher(debug=False)} | kwargs
    return AWSProvider(**options)


def _instance(ec2, instance_id: str) -> dict:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]


def _name(resource: dict) -> str | None:
    return next((tag["Value"] for tag in resource.get("Tags", []) if tag["Key"] == "Name"), None)


def test_the_provider_makes_a_vpc_with_a_subnet_per_zone_and_a_security_group_and_records_them(ec2, tmp_path):
    provider = _provider(tmp_path)

    [vpc] = ec2.describe_vpcs(VpcIds=[provider.vpc_id])["Vpcs"]
    assert vpc["CidrBlock"] == "10.0.0.0/16" and _name(vpc).startswith("parsl.aws.")
    [gateway] = ec2.describe_internet_gateways(InternetGatewayIds=[provider.internet_gateway])["InternetGateways"]
    assert gateway["Attachments"] == [{"State": "available", "VpcId": provider.vpc_id}]
    [table] = ec2.describe_route_tables(RouteTableIds=[provider.route_table])["RouteTables"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": provider.internet_gateway} in [
        {key: route.get(key) for key in ("DestinationCidrBlock", "GatewayId")} for route in table["Routes"]]
    assert {a["SubnetId"] for a in table["Associations"] if "SubnetId" in a} == set(provider.sn_ids)

    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    subnets = ec2.describe_subnets(SubnetIds=provider.sn_ids)["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == sorted(zones)
    assert all(s["VpcId"] == provider.vpc_id and s["MapPublicIpOnLaunch"] for s in subnets)
    assert sorted(s["CidrBlock"] for s in subnets) == sorted(f"10.0.{16 * k}.0/20" for k in range(len(zones)))

    [group] = ec2.describe_security_groups(GroupIds=[provider.sg_id])["SecurityGroups"]
    assert group["VpcId"] == provider.vpc_id
    ingress = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), tuple(r["CidrIp"] for r in p["IpRanges"]))
               for p in group["IpPermissions"]}
    assert ingress == {("tcp", 0, 65535, ("10.0.0.0/16",)), ("udp", 0, 65535, ("10.0.0.0/16",)),
                       ("icmp", -1, -1, ("0.0.0.0/0",)), ("tcp", 22, 22, ("0.0.0.0/0",))}

    state = json.loads((tmp_path / "state.json").read_text())
    assert state == {"vpcID": provider.vpc_id, "sgID": provider.sg_id, "snIDs": provider.sn_ids,
                     "igwID": provider.internet_gateway, "rtID": provider.route_table, "instances": [],
                     "instanceState": {}}


def test_a_block_is_an_instance_whose_user_data_runs_worker_init_then_the_workers(ec2, tmp_path):
    ec2.create_key_pair(KeyName="debugging")
    provider = _provider(tmp_path, key_name="debugging", instance_type="t3.micro",
                         worker_init="source /venv/bin/activate")
    job_id = provider.submit("process_worker_pool.py --block 0", 1, "htex")

    instance = _instance(ec2, job_id)
    assert instance["ImageId"] == AMI and instance["InstanceType"] == "t3.micro"
    assert instance["KeyName"] == "debugging"
    assert instance["SubnetId"] in provider.sn_ids and instance["VpcId"] == provider.vpc_id
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [provider.sg_id]
    job_name = provider.resources[job_id]["job_name"]
    assert job_name.startswith("htex.") and _name(instance) == job_name
    behaviour = ec2.describe_instance_attribute(InstanceId=job_id, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    user_data = ec2.describe_instance_attribute(InstanceId=job_id, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(user_data).decode() == f"""#!/bin/bash
cd ~
export JOBNAME="{job_name}"
source /venv/bin/activate

process_worker_pool.py --block 0

# Power off once the workers exit: the provider starts instances with shutdown behaviour
# "terminate", so this ends the instance and its costs.
if ! false
then
    shutdown -h now
fi
"""
    # moto starts instances as "pending" and has them "running" by the next question
    assert provider.status([job_id])[0].state is JobState.RUNNING
    assert json.loads((tmp_path / "state.json").read_text())["instances"] == [job_id]


def test_cancel_terminates_the_instance_and_the_block_is_cancelled(ec2, tmp_path):
    provider = _provider(tmp_path)
    job_ids = [provider.submit("sleep 1000", 1), provider.submit("sleep 1000", 1)]
    assert provider.cancel(job_ids[:1]) == [True]
    assert _instance(ec2, job_ids[0])["State"]["Name"] == "terminated"
    assert _instance(ec2, job_ids[1])["State"]["Name"] == "running"
    assert [s.state for s in provider.status(job_ids)] == [JobState.CANCELLED, JobState.RUNNING]
    assert provider.instances == job_ids[1:]


def test_an_instance_that_ends_by_itself_is_a_completed_block(ec2, tmp_path):
    """What the user data's shutdown does, played by the test: the instance terminates."""
    provider = _provider(tmp_path)
    job_id = provider.submit("true", 1)
    ec2.terminate_instances(InstanceIds=[job_id])
    status = provider.status([job_id])[0]
    assert (status.state, status.message) == (JobState.COMPLETED, "terminated")


def test_with_linger_cancel_refuses_and_the_instance_keeps_running(ec2, tmp_path):
    provider = _provider(tmp_path, linger=True)
    job_id = provider.submit("true", 1)
    assert provider.cancel([job_id]) == [False]
    assert _instance(ec2, job_id)["State"]["Name"] == "running"
    user_data = ec2.describe_instance_attribute(InstanceId=job_id, Attribute="userData")["UserData"]["Value"]
    assert "if ! true\n" in base64.b64decode(user_data).decode()


def test_teardown_terminates_the_instances_and_removes_the_network_and_the_state_file(ec2, tmp_path):
    provider = _provider(tmp_path)
    job_ids = [provider.submit("sleep 1000", 1) for _ in range(2)]
    made = {"vpc": provider.vpc_id, "igw": provider.internet_gateway, "rt": provider.route_table,
            "sg": provider.sg_id, "subnets": list(provider.sn_ids)}

    provider.teardown()

    assert {_instance(ec2, i)["State"]["Name"] for i in job_ids} == {"terminated"}
    assert [s.state for s in provider.status(job_ids)] == [JobState.CANCELLED] * 2
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [made["vpc"]]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": made["subnets"]}])["Subnets"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [made["sg"]]}])["SecurityGroups"]
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "internet-gateway-id", "Values": [made["igw"]]}])["InternetGateways"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": [made["rt"]]}])["RouteTables"]
    assert (vpcs, subnets, groups, gateways, tables) == ([], [], [], [], [])
    assert not (tmp_path / "state.json").exists()
    assert (provider.vpc_id, provider.sg_id, provider.sn_ids, provider.instances) == (None, None, [], [])
    provider.teardown()  # nothing left: does nothing


def test_a_second_provider_reuses_the_network_and_instances_recorded_in_the_state_file(ec2, tmp_path):
    first = _provider(tmp_path)
    job_id = first.submit("sleep 1000", 1)
    vpcs_before = len(ec2.describe_vpcs()["Vpcs"])

    second = _provider(tmp_path)
    assert (second.vpc_id, second.sg_id, second.sn_ids, second.internet_gateway, second.route_table) == (
        first.vpc_id, first.sg_id, first.sn_ids, first.internet_gateway, first.route_table)
    assert len(ec2.describe_vpcs()["Vpcs"]) == vpcs_before
    assert second.instances == [job_id]
    assert second.status([job_id])[0].state is JobState.RUNNING
    second.teardown()
    assert _instance(ec2, job_id)["State"]["Name"] == "terminated"
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [first.vpc_id]}])["Vpcs"] == []


def test_an_unknown_region_fails_with_an_error_naming_the_region_and_endpoint(ec2, tmp_path, moto_server):
    with pytest.raises(ConfigurationError) as caught:
        _provider(tmp_path, region="nowhere-1")
    message = str(caught.value)
    assert "region 'nowhere-1'" in message and moto_server.url in message and "Check the region" in message
    assert not (tmp_path / "state.json").exists()


def test_no_credentials_at_all_is_a_configuration_error(ec2, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(ConfigurationError, match="no credentials.*profile.*key_file.*AWS_ACCESS_KEY_ID"):
        _provider(tmp_path)


def test_credentials_from_a_key_file_are_used_and_kept_out_of_the_repr(ec2, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"AWSAccessKeyId": "AKIAEXAMPLEKEY", "AWSSecretKey": "very-secret-value"}))
    provider = _provider(tmp_path, key_file=str(key_file))
    assert provider.session.get_credentials().access_key == "AKIAEXAMPLEKEY"
    assert ec2.describe_vpcs(VpcIds=[provider.vpc_id])["Vpcs"]
    assert "very-secret-value" not in repr(provider) and str(key_file) in repr(provider)


def test_an_unreadable_key_file_is_a_configuration_error_naming_it(ec2, tmp_path):
    key_file = tmp_path / "keys.json"
    key_file.write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read the credentials in key_file .*keys.json"):
        _provider(tmp_path, key_file=str(key_file))


def test_a_launch_ec2_refuses_raises_submit_exception_with_its_message(ec2, tmp_path):
    missing = "arn:aws:iam::123456789012:instance-profile/no-such-profile"
    provider = _provider(tmp_path, iam_instance_profile_arn=missing)
    with pytest.raises(SubmitException, match=f"EC2 refused the instance.*NoSuchEntity.*{missing}"):
        provider.submit("true", 1)
    assert provider.instances == [] and provider.resources == {}


def test_an_instance_type_no_zone_offers_raises_submit_exception(ec2, tmp_path):
    provider = _provider(tmp_path, instance_type="x9.imaginary")
    with pytest.raises(SubmitException, match="offers instance type 'x9.imaginary'"):
        provider.submit("true", 1)


def test_no_more_instances_than_max_blocks_times_nodes_per_block(ec2, tmp_path):
    provider = _provider(tmp_path, max_blocks=1)
    provider.submit("true", 1)
    with pytest.raises(SubmitException, match="the most allowed"):
        provider.submit("true", 1)


def test_instances_that_ended_by_themselves_do_not_count_against_max_blocks(ec2, tmp_path):
    """What the user data's shutdown does, played by the test: the only allowed instance
    terminates, and a new block may start, even before any status poll has seen it end; a
    running one still counts."""
    provider = _provider(tmp_path, max_blocks=1)
    first = provider.submit("true", 1)
    ec2.terminate_instances(InstanceIds=[first])
    second = provider.submit("true", 1)

    assert provider.resources[first]["status"].state is JobState.COMPLETED
    assert _instance(ec2, second)["State"]["Name"] == "running"
    with pytest.raises(SubmitException, match="1 instances of this provider have not ended"):
        provider.submit("true", 1)
