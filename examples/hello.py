"""Hello World with parsl_repro: one python app and one bash app.

Shows the default configuration (``parsl.load()`` starts a local ThreadPoolExecutor), a python
app returning a value, and a bash app whose stdout goes to a file.

Run it from any directory (the run directory ``runinfo/`` is made in the current directory):

    python examples/hello.py
"""
import os
import tempfile

import parsl_repro as parsl
from parsl_repro import bash_app, python_app


@python_app
def hello_python(message):
    return f"Hello {message}!"


@bash_app
def hello_bash(message, stdout=None, stderr=None):
    return f'echo "Hello {message}!"'


def main() -> None:
    parsl.load()
    try:
        print(hello_python("World").result())

        with tempfile.TemporaryDirectory() as workdir:
            out_path = os.path.join(workdir, "hello-bash.out")
            hello_bash("World", stdout=out_path).result()  # result() raises if the command failed
            with open(out_path) as f:
                print(f.read(), end="")
    finally:
        parsl.dfk().cleanup()


if __name__ == "__main__":
    main()
