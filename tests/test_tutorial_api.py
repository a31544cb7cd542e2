"""The API of Parsl's first tutorial keeps working exactly as that tutorial wrote it."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def run_script(tmp_path, body: str) -> str:
    script = tmp_path / "tutorial.py"
    script.write_text(textwrap.dedent(body))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_star_import_threadpool_max_workers_and_app_decorator(tmp_path):
    out = run_script(tmp_path, """
        from parsl_repro import *

        workers = ThreadPoolExecutor(max_workers=4)
        dfk = DataFlowKernel(workers)

        @App('python', dfk)
        def double(x):
            return x * 2

        @App('bash', dfk)
        def echo(message, stdout='echo.out'):
            return 'echo {0}'.format(message)

        print(double(21).result())
        echo('from bash').result()
        print(open('echo.out').read().strip())
        print(workers.max_threads)
        dfk.cleanup()
    """)
    assert out.splitlines() == ["42", "from bash", "4"]


def test_data_flow_kernel_with_executors_list_and_config_keyword(tmp_path):
    out = run_script(tmp_path, """
        from parsl_repro import App, Config, DataFlowKernel, ThreadPoolExecutor

        first = DataFlowKernel(executors=[ThreadPoolExecutor(max_workers=2, label='a')])
        second = DataFlowKernel(config=Config(executors=[ThreadPoolExecutor(label='b')]))

        @App('python', first)
        def where():
            import threading
            return threading.current_thread().name

        @App('python', second)
        def also():
            import threading
            return threading.current_thread().name

        print(where().result().split('_')[0], also().result().split('_')[0])
        first.cleanup()
        second.cleanup()
    """)
    assert out.split() == ["ThreadPoolExecutor-a", "ThreadPoolExecutor-b"]
