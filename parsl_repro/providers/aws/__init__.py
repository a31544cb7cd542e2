"""The provider whose blocks are Amazon EC2 instances (needs the ``aws`` extra)."""
from parsl_repro.providers.aws.aws import AWSProvider

__all__ = ["AWSProvider"]
