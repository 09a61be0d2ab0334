"""Shared fixtures: the shared-data policy, a tiny corpus built from the sample data, a tiny checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from obert_lib.paths import shared_data_dir


def shared_file(rel: str) -> Path:
    """A path under ../shared/data; skip when absent, fail when OBERT_REQUIRE_SHARED_DATA=1."""
    path = shared_data_dir() / rel
    if not path.exists():
        message = f"shared data {path} is missing (see ../shared/data/README.md)"
        if os.environ.get("OBERT_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message + " and OBERT_REQUIRE_SHARED_DATA=1")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory):
    """The corpus stage run once on the embedded sample corpus."""
    from obert_lib import corpus

    out = tmp_path_factory.mktemp("corpus")
    return corpus.run({"output_dir": str(out)}, corpus.CorpusRuntime(progress=False))


@pytest.fixture(scope="session")
def tiny_checkpoint(sample_corpus, tmp_path_factory):
    """A two-stage tiny pretraining run (a few steps) on the sample corpus; returns the result."""
    from obert_lib import pretraining

    out = tmp_path_factory.mktemp("pretrain")
    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(out),
        **{"stages.0.steps": 3, "stages.1.steps": 3, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1},
    )
    return pretraining.run(plan, progress=False)


class NetworkAccessInTest(RuntimeError):
    """A test tried to reach a host other than this machine (nothing may download at run time)."""


def _local_addresses() -> set[str]:
    import socket

    names = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", socket.gethostname()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return names


@pytest.fixture(autouse=True, scope="session")
def no_network_access():
    """Every test runs with outbound connections refused: a connect() to any host but this machine raises
    NetworkAccessInTest (not an OSError, so no library retries or falls back to it silently)."""
    import ipaddress
    import socket

    local = _local_addresses()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(sock, address) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        host = str(address[0])
        if host in local:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def connect(sock, address):
        if not allowed(sock, address):
            raise NetworkAccessInTest(f"a test tried to connect to {address}; code under test must stay offline")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if not allowed(sock, address):
            raise NetworkAccessInTest(f"a test tried to connect to {address}; code under test must stay offline")
        return real_connect_ex(sock, address)

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if host is not None and name not in local:
            try:
                ipaddress.ip_address(name)
            except ValueError:  # a host name that is not this machine's: the first step of a download
                raise NetworkAccessInTest(
                    f"a test tried to resolve {name!r}; code under test must stay offline"
                ) from None
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    yield
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
        real_connect,
        real_connect_ex,
        real_getaddrinfo,
    )
