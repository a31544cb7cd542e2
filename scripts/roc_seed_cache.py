"""Seed roc-validator's HTTP cache (requests_cache, SQLite) with vendored JSON-LD contexts, so that
``rocrate-validator validate --offline --cache-path CACHE`` finds them without a network.

Run with the validator environment's Python (scripts/roc-validator.sh does):
    python scripts/roc_seed_cache.py CACHE URL=FILE [URL=FILE ...]
CACHE is what is later given as ``--cache-path`` (requests_cache adds ``.sqlite``). The session's
settings are the validator's own (``rocrate_validator.utils.http.HttpRequester``), so its lookups hit.
"""
from __future__ import annotations

import io
import sys
from datetime import timedelta
from pathlib import Path

import requests
from requests_cache import CachedSession
from urllib3 import HTTPResponse


def seed(cache: str, documents: dict[str, Path]) -> None:
    session = CachedSession(cache_name=cache, backend="sqlite", expire_after=-1, allowable_methods=("GET",),
                            allowable_codes=(200, 302, 404))
    for url, path in documents.items():
        body = Path(path).read_bytes()
        headers = {"Content-Type": "application/ld+json", "Content-Length": str(len(body))}
        response = requests.Response()
        response.status_code, response.reason, response.url = 200, "OK", url
        response._content, response.encoding = body, "utf-8"
        response.headers.update(headers)
        response.raw = HTTPResponse(body=io.BytesIO(body), headers=headers, status=200, reason="OK",
                                    preload_content=False, request_url=url)
        response.elapsed = timedelta(0)
        response.request = requests.Request("GET", url).prepare()
        session.cache.save_response(response)
        if not session.cache.contains(url=url):
            raise SystemExit(f"could not seed {url}")
    session.close()


if __name__ == "__main__":
    seed(sys.argv[1], {url: Path(path) for url, path in (arg.split("=", 1) for arg in sys.argv[2:])})
