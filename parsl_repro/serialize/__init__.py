"""Serialization of tasks, results and exceptions for executors that cross process boundaries.

Only deserialize data from authenticated peers: see ``parsl_repro.serialize.facade``.
"""
from parsl_repro.serialize.facade import (
    deserialize,
    deserialize_value,
    pack_apply_message,
    pack_res_spec_apply_message,
    serialize,
    serialize_value,
    unpack_apply_message,
    unpack_res_spec_apply_message,
)

__all__ = (
    "serialize",
    "deserialize",
    "serialize_value",
    "deserialize_value",
    "pack_apply_message",
    "unpack_apply_message",
    "pack_res_spec_apply_message",
    "unpack_res_spec_apply_message",
)
