"""Two sites in one run: this machine's threads, and a Slurm cluster driven over SSH.

The laptop writes a parameter file; the cluster's pilot jobs (Slurm batch jobs submitted from
its login node over SSH, with the interchange running on the login node) turn every line of it
into a result file; the laptop reads those back and sums them. Apps are pinned to a site with
``executors=[...]``; the provenance store records each try, block and node with its site.

    python multisite.py --host login.cluster.edu --user me --partition debug \\
        --worker-init 'source ~/venv/bin/activate'

Files move by path here, so the paths must be readable on both sides: a shared file system,
or (as in this repository's test) a "cluster" that is this machine's own sshd and Slurm. On a
real cluster point --workdir at a directory both sides see, or stage files (docs/staging.md).
The cluster needs parsl_repro installed (found on PATH after --worker-init).
"""
from __future__ import annotations

import argparse
import os

import parsl_repro
from parsl_repro import File, python_app
from parsl_repro.channels import SSHChannel
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
from parsl_repro.launchers import SimpleLauncher
from parsl_repro.providers import SlurmProvider


def make_config(args: argparse.Namespace) -> Config:
    channel = SSHChannel(args.host, port=args.port, username=args.user, key_filename=args.key,
                         host_keys_filename=args.known_hosts,
                         envs={"SLURM_CONF": args.slurm_conf} if args.slurm_conf else None)
    cluster = HighThroughputExecutor(
        label="cluster", address=args.address, max_workers_per_node=2,
        provider=SlurmProvider(partition=args.partition, nodes_per_block=1, init_blocks=1, max_blocks=1,
                               walltime="00:10:00", exclusive=False, launcher=SimpleLauncher(),
                               channel=channel, worker_init=args.worker_init))
    return Config(executors=[ThreadPoolExecutor(label="laptop", max_threads=2), cluster])


@python_app(executors=["laptop"])
def write_parameters(n: int, outputs: tuple = ()) -> str:
    with open(outputs[0].filepath, "w") as f:
        f.writelines(f"{i}\n" for i in range(1, n + 1))
    return outputs[0].filepath


@python_app(executors=["cluster"])
def simulate(line_number: int, inputs: tuple = (), outputs: tuple = ()) -> str:
    import socket
    with open(inputs[0].filepath) as f:
        value = int(f.read().split()[line_number])
    with open(outputs[0].filepath, "w") as f:
        f.write(f"{value * value} {socket.gethostname()}\n")
    return outputs[0].filepath


@python_app(executors=["laptop"])
def total(inputs: tuple = ()) -> int:
    result = 0
    for item in inputs:
        with open(item.filepath) as f:
            result += int(f.read().split()[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the cluster's login node")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--user", default=None)
    parser.add_argument("--key", default=None, help="private key file (default: the SSH agent and ~/.ssh)")
    parser.add_argument("--known-hosts", default=None, help="known_hosts file (default ~/.ssh/known_hosts)")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--address", default=None, help="the login node's address as the compute nodes see it")
    parser.add_argument("--worker-init", default="", help="shell lines that put parsl_repro on the cluster's PATH")
    parser.add_argument("--slurm-conf", default=None, help="SLURM_CONF for the scheduler commands, if needed")
    parser.add_argument("--workdir", default="multisite-work")
    parser.add_argument("-n", type=int, default=6, help="parameters to simulate")
    args = parser.parse_args()
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)

    with parsl_repro.load(make_config(args)):
        parameters = write_parameters(args.n, outputs=[File(os.path.join(workdir, "parameters.txt"))])
        simulated = [simulate(i, inputs=[parameters.outputs[0]],
                              outputs=[File(os.path.join(workdir, f"result-{i}.txt"))]) for i in range(args.n)]
        answer = total(inputs=[s.outputs[0] for s in simulated]).result()
    print(f"Sum of squares 1..{args.n}: {answer}")


if __name__ == "__main__":
    main()
