"""Estimate pi by Monte Carlo sampling, as in Parsl's tutorial.

Shows apps running in parallel and a dependent app: three ``pi`` tasks run at once, and ``mean``
starts only when all three futures it was given are done.

    python examples/monte_carlo_pi.py
"""
import parsl_repro as parsl
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor


@python_app
def pi(num_points):
    from random import random

    inside = 0
    for _ in range(num_points):
        x, y = random(), random()  # a random point in the unit square
        if x**2 + y**2 < 1:  # ... that falls inside the quarter circle
            inside += 1
    return inside * 4 / num_points


@python_app
def mean(a, b, c):
    return (a + b + c) / 3


def main() -> None:
    config = Config(executors=[ThreadPoolExecutor(max_threads=3)])
    with parsl.load(config):
        a, b, c = pi(10**6), pi(10**6), pi(10**6)  # three estimates, running in parallel
        mean_pi = mean(a, b, c)  # waits for a, b and c; we never block on them here

        print(f"Estimates: {a.result():.5f}, {b.result():.5f}, {c.result():.5f}")
        print(f"Average: {mean_pi.result():.5f}")


if __name__ == "__main__":
    main()
