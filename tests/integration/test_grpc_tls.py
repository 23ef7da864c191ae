"""The online server over TLS and mutual TLS (`serving.tls`), with certificates made by
the openssl command line, a real redis-server and the real server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore
from skewless.client import OnlineClient
from skewless.errors import ConfigError
from skewless.grpc import running_server
from skewless.online.codec import encode_values, entity_key
from skewless.types import Float64

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

DEFS = """
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
rating = FeatureView(
    "rating",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("score", Float64)],
    source=FileSource("data/rating.parquet", timestamp_field="ts"),
)
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(certs: Path, name: str, *, server: bool) -> None:
    """`name`.key and `name`.pem, signed by ca.pem; a server's names 127.0.0.1 and
    localhost."""
    openssl("genrsa", "-out", f"{name}.key", "2048", cwd=certs)
    openssl(
        "req",
        "-new",
        "-key",
        f"{name}.key",
        "-subj",
        f"/CN={name}",
        "-out",
        f"{name}.csr",
        cwd=certs,
    )
    extensions = certs / f"{name}.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        if server
        else "extendedKeyUsage=clientAuth\n"
    )
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", extensions.name, "-out", f"{name}.pem",
        cwd=certs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    certs = tmp_path_factory.mktemp("certs")
    authority("ca", "skewless test CA", certs)
    issue(certs, "server", server=True)
    issue(certs, "client", server=False)
    authority("other", "another CA", certs)  # signed neither the server nor the client
    return certs


def authority(name: str, title: str, certs: Path) -> None:
    """A self-signed CA: `name`.key and `name`.pem."""
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={title}", cwd=certs,
    )  # fmt: skip


def make_repo(root: Path, redis_url: str, tls: str) -> Path:
    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: tls\nregistry: '{root / 'registry.db'}'\n"
        f"online_store: {{type: redis, url: '{redis_url}'}}\n{tls}"
    )
    (repo / "defs.py").write_text(DEFS)
    now = datetime.now(UTC)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2], pa.int64()),
                "ts": pa.array([now, now], pa.timestamp("us", tz="UTC")),
                "score": pa.array([4.5, 3.0]),
            }
        ),
        repo / "data/rating.parquet",
    )
    store = FeatureStore(repo)
    store.apply()
    event = pa.array([int(now.timestamp() * 1e6)] * 2, pa.int64())
    values = encode_values(
        event, pa.array([None, None], pa.int64()), pa.array([0, 0], pa.int64()),
        [pa.array([4.5, 3.0])], [Float64],
    )  # fmt: skip
    store.online_store().write(
        (entity_key("tls", "rating", [i + 1]), value, 0) for i, value in enumerate(values)
    )
    return repo


def tls_section(certs: Path, *, mutual: bool) -> str:
    client_ca = f"\n    client_ca_file: '{certs / 'ca.pem'}'" if mutual else ""
    return (
        f"serving:\n  tls:\n    cert_file: '{certs / 'server.pem'}'\n"
        f"    key_file: '{certs / 'server.key'}'{client_ca}\n"
    )


@pytest.fixture(scope="module")
def tls_repo(tmp_path_factory: pytest.TempPathFactory, certs: Path, redis_url: str) -> Path:
    return make_repo(tmp_path_factory.mktemp("tls"), redis_url, tls_section(certs, mutual=False))


@pytest.fixture(scope="module")
def mtls_repo(tmp_path_factory: pytest.TempPathFactory, certs: Path, redis_url: str) -> Path:
    return make_repo(tmp_path_factory.mktemp("mtls"), redis_url, tls_section(certs, mutual=True))


def scores(client: OnlineClient) -> list[object]:
    got = client.get_online_features(["rating:score"], [{"driver_id": 1}, {"driver_id": 2}])
    return list(got.to_dict()["score"])


@pytest.fixture(scope="module")
def tls_target(tls_repo: Path) -> Iterator[str]:
    with running_server(tls_repo) as running:
        yield running.target


def test_grpc_tls_serves_a_client_that_trusts_the_servers_ca(tls_target: str, certs: Path) -> None:
    with OnlineClient(tls_target, tls_ca_file=certs / "ca.pem") as client:
        assert scores(client) == [4.5, 3.0]


def test_grpc_tls_refuses_plaintext_and_an_untrusted_ca(tls_target: str, certs: Path) -> None:
    for client in (
        OnlineClient(tls_target, timeout_s=3),
        OnlineClient(tls_target, timeout_s=3, tls_ca_file=certs / "other.pem"),
    ):
        with client, pytest.raises(grpc.RpcError) as info:
            scores(client)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_grpc_mutual_tls_serves_only_clients_with_a_certificate_of_its_ca(
    mtls_repo: Path, certs: Path
) -> None:
    with running_server(mtls_repo) as running:
        with OnlineClient(
            running.target,
            tls_ca_file=certs / "ca.pem",
            tls_cert_file=certs / "client.pem",
            tls_key_file=certs / "client.key",
        ) as client:
            assert scores(client) == [4.5, 3.0]
        # a client without a certificate, and one whose certificate the CA did not sign
        # (the server's own key, self-signed as "another CA")
        for cert, key in ((None, None), (certs / "other.pem", certs / "other.key")):
            with (
                OnlineClient(
                    running.target,
                    timeout_s=3,
                    tls_ca_file=certs / "ca.pem",
                    tls_cert_file=cert,
                    tls_key_file=key,
                ) as client,
                pytest.raises(grpc.RpcError) as info,
            ):
                scores(client)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_grpc_tls_file_that_cannot_be_read_is_a_config_error_naming_key_and_path(
    tls_repo: Path,
) -> None:
    config = tls_repo / "feature_store.yaml"
    text = config.read_text()
    broken = tls_repo.parent / "broken"
    broken.mkdir()
    (broken / "feature_store.yaml").write_text(
        text.replace("server.key", "missing.key").replace("registry.db", "registry-b.db")
    )
    with pytest.raises(ConfigError) as info, running_server(broken):
        pass
    assert "serving.tls.key_file" in str(info.value)
    assert "missing.key" in str(info.value)
