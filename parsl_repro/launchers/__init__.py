"""Launchers: how a block's job script starts several copies of the worker command.

Each class renders shell text for one way of fanning out (background processes, srun, aprun,
jsrun, mpiexec, mpirun, GNU parallel, or a plain prefix); providers put that text in the job
script they submit. ``docs/launchers.md`` shows what each one renders.
"""
from parsl_repro.launchers.launchers import (
    AprunLauncher,
    GnuParallelLauncher,
    JsrunLauncher,
    MpiExecLauncher,
    MpiRunLauncher,
    SimpleLauncher,
    SingleNodeLauncher,
    SrunLauncher,
    SrunMPILauncher,
    WrappedLauncher,
)

__all__ = [
    "AprunLauncher",
    "GnuParallelLauncher",
    "JsrunLauncher",
    "MpiExecLauncher",
    "MpiRunLauncher",
    "SimpleLauncher",
    "SingleNodeLauncher",
    "SrunLauncher",
    "SrunMPILauncher",
    "WrappedLauncher",
]
