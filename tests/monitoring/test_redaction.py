"""One redactor hides the password of every URL: database URLs in messages, file URLs in the
store, and URLs inside a config's repr or an argv item (``parsl_repro.utils.redact_secrets``)."""
from __future__ import annotations

import pytest

from parsl_repro.monitoring import store
from parsl_repro.utils import redact_secrets


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql+psycopg://alice:s3cret@db.example.org:5432/runs",
     "postgresql+psycopg://alice:***@db.example.org:5432/runs"),
    ("ftp://parsl:s3cr3t-pw@127.0.0.1:2121/data/hello.txt", "ftp://parsl:***@127.0.0.1:2121/data/hello.txt"),
    ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),  # SQLAlchemy reads "pa/ss" as the password
    ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:1234@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:p@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
    ("postgres//alice:pw@h/db", "postgres//alice:***@h/db"),  # a mistyped scheme still hides it
    ("Config(provenance='postgresql://a:b@h/db', label='u@v')",
     "Config(provenance='postgresql://a:***@h/db', label='u@v')"),
    ("--db=postgres://alice:pw@db.example/x", "--db=postgres://alice:***@db.example/x"),
])
def test_the_password_of_a_url_is_hidden_wherever_it_appears(text, expected):
    assert redact_secrets(text) == expected


@pytest.mark.parametrize("text", [
    "sqlite:////tmp/runinfo/provenance.db",
    "ftp://anonymous@h/x",
    "https://h.example/a:b@c",  # a colon and an "@" in the path are not user info
    "https://host:8443/files/user@example.com/x.csv",  # a port, then a path holding an "@"
    "http://[::1]:8080/x@y",
    "run.py --size 3",
])
def test_text_without_a_password_is_returned_as_it_is(text):
    assert redact_secrets(text) == text


def test_the_store_error_shows_the_url_with_its_password_hidden():
    error = store.StoreUnavailable("postgresql+psycopg://alice:s3cret@127.0.0.1:1/runs", OSError("refused"))
    assert "postgresql+psycopg://alice:***@127.0.0.1:1/runs" in str(error) and "s3cret" not in str(error)
    assert store.redact is redact_secrets


def test_serialized_arguments_holding_a_url_password_are_found_and_binary_noise_is_not():
    import pickle
    import random

    from parsl_repro import File
    from parsl_repro.utils import holds_url_password

    assert holds_url_password(pickle.dumps(([File("ftp://alice:s3cret@host/x")], {})))
    assert holds_url_password(pickle.dumps((("postgresql+psycopg://bob:p%40ss@db:5432/runs",), {})))
    assert not holds_url_password(pickle.dumps((("http://host:8080/path@x", "ftp://host/x"), {})))
    noise = random.Random(0)
    assert not any(holds_url_password(noise.randbytes(1 << 20)) for _ in range(20))
