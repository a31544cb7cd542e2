"""Memo keys, below the kernel and the provenance store: the canonical bytes of argument values
(``canonical``), the identity of an app's code (``identity``), file content digests (``files``),
Parsl's ``id_for_memo`` extension point (``extension``), the key of a task (``key``), and the
contracts around memoization (``contracts``: ``Memoizer``, ``ResultStore``, ``StoredResult``).

The kernel's memoizer (``parsl_repro.dataflow.memoization.BasicMemoizer``) builds on these, and
re-exports Parsl's names at Parsl's path.
"""
from parsl_repro.memo.canonical import Uncacheable, canonical_bytes, digest
from parsl_repro.memo.contracts import Memoizer, ResultStore, StoredResult
from parsl_repro.memo.extension import id_for_memo
from parsl_repro.memo.files import FileDigestCache, default_file_cache
from parsl_repro.memo.identity import AppIdentity, app_identity
from parsl_repro.memo.key import identity_of, make_hash, memo_key

__all__ = [
    "AppIdentity", "FileDigestCache", "Memoizer", "ResultStore", "StoredResult", "Uncacheable", "app_identity",
    "canonical_bytes", "default_file_cache", "digest", "id_for_memo", "identity_of", "make_hash", "memo_key",
]
