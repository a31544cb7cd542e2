"""The launchers: each renders the bash text that starts a block's worker copies its own way.

Every rendered script runs with ``set -e``. Launchers that hand the command to another program
(srun, aprun, jsrun, mpiexec, mpirun, GNU parallel) first write it to ``cmd_<job name>.sh`` in
``script_dir`` (or the working directory when ``script_dir`` is empty or missing). That file is
written through an unquoted here-document, so ``$VARIABLES`` in the command expand when the
file is written, in the job script's environment, as they do in Parsl.
"""
from __future__ import annotations

import logging
import re

from parsl_repro.launchers.base import Launcher
from parsl_repro.typecheck import typechecked_config

logger = logging.getLogger(__name__)

_HEREDOC_END = "PARSL_CMD_EOF"


def _double_quoted(text: str) -> str:
    """``text`` as a bash double-quoted word: the characters bash still expands there are escaped."""
    return '"' + re.sub(r'(["\\$`])', r"\\\1", text) + '"'


def _words(*parts: str) -> str:
    """Join the non-empty parts of a command line with single spaces (empty overrides vanish)."""
    return " ".join(part for part in parts if part)


def _script(*lines: str | None) -> str:
    """Join script lines, leaving out the ``None`` ones (debug output when debug is off)."""
    return "\n".join(line for line in lines if line is not None) + "\n"


def _say(debug: bool, message: str, indent: str = "") -> str | None:
    """An ``echo`` of ``message`` when debugging, else nothing."""
    return f'{indent}echo "{message}"' if debug else None


def _cores_from_host(debug: bool) -> list[str | None]:
    return ["export CORES=$(getconf _NPROCESSORS_ONLN)", _say(debug, "Found cores : $CORES")]


def _cores_from_slurm(debug: bool) -> list[str | None]:
    return [
        "export CORES=$SLURM_CPUS_ON_NODE",
        "export NODES=$SLURM_JOB_NUM_NODES",
        _say(debug, "Found cores : $CORES"),
        _say(debug, "Found nodes : $NODES"),
    ]


def _write_command_file(command: str, script_dir: str, job_name: str, mode: str) -> list[str | None]:
    """Lines that put ``command`` in ``$CMD_FILE`` (``cmd_<job name>.sh``) and make it executable.

    ``job_name`` is the shell expression naming the job, e.g. ``$JOBNAME``; ``mode`` is the
    chmod argument.
    """
    return [
        f"SCRIPT_DIR={_double_quoted(script_dir)}",
        '[[ -d $SCRIPT_DIR ]] || SCRIPT_DIR=""',
        f'CMD_FILE="${{SCRIPT_DIR:+$SCRIPT_DIR/}}cmd_{job_name}.sh"',
        f'cat << {_HEREDOC_END} > "$CMD_FILE"',
        command,
        _HEREDOC_END,
        f'chmod {mode} "$CMD_FILE"',
    ]


def _unique_nodes(variable: str) -> list[str | None]:
    """Lines that write the block's distinct host names to ``$variable`` (``$JOBNAME.nodes``).

    The hosts come from ``$PBS_NODEFILE``; without one the block is this host alone.
    """
    return [
        f'{variable}="$JOBNAME.nodes"',
        'if [ -z "$PBS_NODEFILE" ]; then',
        f'    echo "localhost" > "${variable}"',
        "else",
        f'    sort -u "$PBS_NODEFILE" > "${variable}"',
        "fi",
    ]


class SimpleLauncher(Launcher):
    """Returns the command unchanged: one copy per block, started by the job script itself.

    Use it when the command fans out on its own (an MPI-aware executor, a manager that starts
    its own workers). A block of more than one node still runs a single copy, on the first
    node; that case is logged as a warning.
    """

    @typechecked_config
    def __init__(self, debug: bool = True) -> None:
        super().__init__(debug=debug)

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        if nodes_per_block > 1:
            logger.warning("SimpleLauncher runs one copy of the command per block, on one node; "
                           "%d nodes per block were requested, so you may get fewer workers than "
                           "expected. Use a multi-node launcher such as SrunLauncher to use them all.",
                           nodes_per_block)
        return command


class WrappedLauncher(Launcher):
    """Puts ``prepend`` in front of the command, e.g. ``time`` or a ``docker run ...`` invocation.

    One copy is started whatever the task and node counts; counts above one are logged as
    warnings.
    """

    @typechecked_config
    def __init__(self, prepend: str, debug: bool = True) -> None:
        super().__init__(debug=debug)
        self.prepend = prepend

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        if tasks_per_node > 1:
            logger.warning("WrappedLauncher ignores the number of tasks per node (%d requested); "
                           "you may get fewer workers than expected", tasks_per_node)
        if nodes_per_block > 1:
            logger.warning("WrappedLauncher ignores the number of nodes per block (%d requested); "
                           "you may get fewer workers than expected", nodes_per_block)
        return f"{self.prepend} {command}"


class SingleNodeLauncher(Launcher):
    """Starts ``tasks_per_node * nodes_per_block`` copies as background processes on this node.

    Each copy runs inside a shell function and gets its number (1, 2, ...) as ``$1``; ``CORES``
    (the host's online processors) is exported and ``WORKERCOUNT`` is set. The script waits for
    every copy. Its exit status is non-zero if every copy failed, or, with ``fail_on_any``, if
    any copy failed.
    """

    @typechecked_config
    def __init__(self, debug: bool = True, fail_on_any: bool = False) -> None:
        super().__init__(debug=debug)
        self.fail_on_any = fail_on_any

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        # A shell function may not be empty; ':' keeps a blank command valid bash.
        body = command if command.strip() else ":"
        # 'if wait' rather than a bare 'wait': under set -e a failed bare wait would end the
        # script at the first failed copy, before the others are waited for and counted.
        return _script(
            "set -e",
            *_cores_from_host(self.debug),
            f"WORKERCOUNT={tasks_per_node * nodes_per_block}",
            "CMD() {",
            body,
            "}",
            'PIDS=""',
            "for COUNT in $(seq 1 1 $WORKERCOUNT); do",
            _say(self.debug, "Launching worker: $COUNT", indent="    "),
            "    CMD $COUNT &",
            '    PIDS="$PIDS $!"',
            "done",
            "ALLFAILED=1",
            "ANYFAILED=0",
            "for PID in $PIDS; do",
            "    if wait $PID; then",
            "        ALLFAILED=0",
            "    else",
            "        ANYFAILED=1",
            "    fi",
            "done",
            _say(self.debug, "All workers done"),
            "exit $ANYFAILED" if self.fail_on_any else "exit $ALLFAILED",
        )


class GnuParallelLauncher(Launcher):
    """Starts the copies with GNU ``parallel`` over SSH, ``tasks_per_node`` at a time per host.

    Hosts are the distinct lines of ``$PBS_NODEFILE``, or ``localhost`` without one. Needs
    ``parallel`` on ``$PATH``, passwordless SSH to those hosts, and (for ``--env _``) a prior
    ``parallel --record-env``. The job log goes to ``$JOBNAME.sh.parallel.log``.
    """

    @typechecked_config
    def __init__(self, debug: bool = True) -> None:
        super().__init__(debug=debug)

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        parallel = _words("parallel --env _", '--joblog "$JOBNAME.sh.parallel.log"',
                          '--sshloginfile "$SSHLOGINFILE"', f"--jobs {tasks_per_node}", '< "$PFILE"')
        return _script(
            "set -e",
            *_cores_from_host(self.debug),
            f"WORKERCOUNT={tasks_per_node * nodes_per_block}",
            *_unique_nodes("SSHLOGINFILE"),
            *_write_command_file(command, script_dir, "$JOBNAME", "u+x"),
            'PFILE="$CMD_FILE.parallel"',
            ': > "$PFILE"',
            "for COUNT in $(seq 1 1 $WORKERCOUNT); do",
            '    printf \'sh %q\\n\' "$CMD_FILE" >> "$PFILE"',
            "done",
            parallel,
            _say(self.debug, "All workers done"),
        )


class MpiExecLauncher(Launcher):
    """Starts the copies as one ``mpiexec`` job over the hosts of ``$PBS_NODEFILE``.

    Ranks are not bound to cores (``{bind_cmd} none``); ``overrides`` is added to the mpiexec
    arguments. Hosts are deduplicated into ``$JOBNAME.nodes`` (``localhost`` without a node file).
    """

    @typechecked_config
    def __init__(self, debug: bool = True, bind_cmd: str = "--bind-to", overrides: str = "") -> None:
        super().__init__(debug=debug)
        self.bind_cmd = bind_cmd
        self.overrides = overrides

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        mpiexec = _words("mpiexec", self.bind_cmd, "none", self.overrides, "-n $WORKERCOUNT",
                         '--hostfile "$HOSTFILE"', '/usr/bin/sh "$CMD_FILE"')
        return _script(
            "set -e",
            *_cores_from_host(self.debug),
            f"WORKERCOUNT={tasks_per_node * nodes_per_block}",
            *_unique_nodes("HOSTFILE"),
            *_write_command_file(command, script_dir, "$JOBNAME", "u+x"),
            mpiexec,
            _say(self.debug, "All workers done"),
        )


class MpiRunLauncher(Launcher):
    """Starts the copies as one ``mpirun -np N`` job running the command file with ``bash_location``.

    ``overrides`` goes between the rank count and the shell.
    """

    @typechecked_config
    def __init__(self, debug: bool = True, bash_location: str = "/bin/bash", overrides: str = "") -> None:
        super().__init__(debug=debug)
        self.bash_location = bash_location
        self.overrides = overrides

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        mpirun = _words("mpirun -np $WORKERCOUNT", self.overrides, self.bash_location, '"$CMD_FILE"')
        return _script(
            "set -e",
            *_cores_from_host(self.debug),
            f"WORKERCOUNT={tasks_per_node * nodes_per_block}",
            *_write_command_file(command, script_dir, "$JOBNAME", "u+x"),
            mpirun,
            _say(self.debug, "All workers done"),
        )


class SrunLauncher(Launcher):
    """Starts the copies as one ``srun --ntasks N -l`` step inside a Slurm allocation.

    ``CORES`` and ``NODES`` are exported from Slurm's ``SLURM_CPUS_ON_NODE`` and
    ``SLURM_JOB_NUM_NODES``; the command file is named after ``$SLURM_JOB_NAME``. ``overrides``
    is added to the srun arguments.
    """

    @typechecked_config
    def __init__(self, debug: bool = True, overrides: str = "") -> None:
        super().__init__(debug=debug)
        self.overrides = overrides

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        task_count = tasks_per_node * nodes_per_block
        srun = _words(f"srun --ntasks {task_count} -l", self.overrides, 'bash "$CMD_FILE"')
        return _script(
            "set -e",
            *_cores_from_slurm(self.debug),
            f"WORKERCOUNT={task_count}",
            *_write_command_file(command, script_dir, "$SLURM_JOB_NAME", "a+x"),
            srun,
            _say(self.debug, "Done"),
        )


class SrunMPILauncher(Launcher):
    """Starts each copy with its own ``srun`` step, so every copy can launch MPI applications.

    With more copies than nodes, each step gets ``NODES * CORES / copies`` tasks; otherwise each
    gets ``NODES / copies`` whole nodes (``--exclusive``). The steps run concurrently and the
    script waits for them. ``overrides`` is added to every srun.
    """

    @typechecked_config
    def __init__(self, debug: bool = True, overrides: str = "") -> None:
        super().__init__(debug=debug)
        self.overrides = overrides

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        task_count = tasks_per_node * nodes_per_block
        srun_shared = _words("srun --ntasks $CORES_PER_BLOCK -l", self.overrides, 'bash "$CMD_FILE" &')
        srun_exclusive = _words("srun --exclusive --nodes $NODES_PER_BLOCK -l", self.overrides,
                                'bash "$CMD_FILE" &')
        return _script(
            "set -e",
            *_cores_from_slurm(self.debug),
            f"WORKERCOUNT={task_count}",
            *_write_command_file(command, script_dir, "$SLURM_JOB_NAME", "a+x"),
            f"TASKBLOCKS={task_count}",
            "if (( TASKBLOCKS > NODES )); then",
            _say(self.debug, "TaskBlocks:$TASKBLOCKS > Nodes:$NODES", indent="    "),
            "    CORES_PER_BLOCK=$(( NODES * CORES / TASKBLOCKS ))",
            "    for BLOCK in $(seq 1 1 $TASKBLOCKS); do",
            "        " + srun_shared,
            "    done",
            "else",
            _say(self.debug, "TaskBlocks:$TASKBLOCKS <= Nodes:$NODES", indent="    "),
            "    NODES_PER_BLOCK=$(( NODES / TASKBLOCKS ))",
            "    for BLOCK in $(seq 1 1 $TASKBLOCKS); do",
            "        " + srun_exclusive,
            "    done",
            "fi",
            "wait",
            _say(self.debug, "Done"),
        )


class _SingleStepLauncher(Launcher):
    """A launcher that starts every copy with one call of a parallel launcher program, in the
    background, then waits for it. Subclasses give the program's words (``_program``)."""

    @typechecked_config
    def __init__(self, debug: bool = True, overrides: str = "") -> None:
        super().__init__(debug=debug)
        self.overrides = overrides

    def _program(self, task_count: int, tasks_per_node: int) -> str:
        raise NotImplementedError

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        task_count = tasks_per_node * nodes_per_block
        step = _words(self._program(task_count, tasks_per_node), self.overrides, '/bin/bash "$CMD_FILE" &')
        return _script(
            "set -e",
            f"WORKERCOUNT={task_count}",
            *_write_command_file(command, script_dir, "$JOBNAME", "a+x"),
            step,
            "wait",
            _say(self.debug, "Done"),
        )


class AprunLauncher(_SingleStepLauncher):
    """Starts the copies with one ``aprun -n <copies> -N <tasks_per_node>`` (Cray ALPS).

    ``overrides`` is added to the aprun arguments; the script waits for aprun to finish.
    """

    def _program(self, task_count: int, tasks_per_node: int) -> str:
        return f"aprun -n {task_count} -N {tasks_per_node}"


class JsrunLauncher(_SingleStepLauncher):
    """Starts the copies with one ``jsrun -n <copies> -r <tasks_per_node>`` (IBM LSF, e.g. Summit).

    ``overrides`` is added to the jsrun arguments; the script waits for jsrun to finish.
    """

    def _program(self, task_count: int, tasks_per_node: int) -> str:
        return f"jsrun -n {task_count} -r {tasks_per_node}"
