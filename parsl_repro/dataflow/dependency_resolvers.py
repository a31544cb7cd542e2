"""Parsl's path for the dependency resolvers; they live in ``parsl_repro.dependencies``, below
``Config`` (which takes one) and the kernel (which uses one)."""
from parsl_repro.dependencies import (
    DEEP_DEPENDENCY_RESOLVER,
    SHALLOW_DEPENDENCY_RESOLVER,
    DependencyResolver,
    deep_traverse_to_gather,
    deep_traverse_to_unwrap,
    shallow_traverse_to_gather,
    shallow_traverse_to_unwrap,
)

__all__ = [
    "DEEP_DEPENDENCY_RESOLVER", "SHALLOW_DEPENDENCY_RESOLVER", "DependencyResolver", "deep_traverse_to_gather",
    "deep_traverse_to_unwrap", "shallow_traverse_to_gather", "shallow_traverse_to_unwrap",
]
