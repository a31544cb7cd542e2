"""Channels: where providers run scheduler commands and put submit scripts (Parsl's module paths).

``LocalChannel`` is this machine; ``SSHChannel`` a remote login node over SSH (paramiko);
``SSHInteractiveLoginChannel`` asks for a password or one-time code on the terminal;
``OAuthSSHChannel`` logs in with an OAuth access token. Parsl removed its channels in 2024;
they are kept here so that a laptop can drive a cluster. See ``docs/configuring.md``.
"""
from parsl_repro.channels.base import Channel
from parsl_repro.channels.local.local import LocalChannel
from parsl_repro.channels.oauth_ssh.oauth_ssh import OAuthSSHChannel
from parsl_repro.channels.ssh.ssh import SSHChannel
from parsl_repro.channels.ssh_il.ssh_il import SSHInteractiveLoginChannel

__all__ = ["Channel", "LocalChannel", "OAuthSSHChannel", "SSHChannel", "SSHInteractiveLoginChannel"]
