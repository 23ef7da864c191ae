"""The embedded server's pure rules: which directory may hold its socket and secret,
how its config file quotes paths, and the URL its clients get."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from redis.connection import parse_url

from skewless.online import embedded
from skewless.online.embedded import (
    EmbeddedServer,
    EmbeddedServerError,
    EmbeddedServerNotTrustedError,
    _config_value,
    check_private_dir,
    private_dir_problem,
)

DIR = stat.S_IFDIR
P = Path("/home/me/my repo/data/online")


def test_private_dir_problem_accepts_only_a_0700_directory_of_the_user() -> None:
    assert private_dir_problem(P, DIR | 0o700, owner=1000, uid=1000) is None
    assert private_dir_problem(P, DIR | 0o500, owner=1000, uid=1000) is None  # narrower is fine


@pytest.mark.parametrize("mode", [0o710, 0o750, 0o755, 0o701, 0o770, 0o777, 0o1777])
def test_private_dir_problem_refuses_group_or_other_bits(mode: int) -> None:
    problem = private_dir_problem(P, DIR | mode, owner=1000, uid=1000)
    assert problem is not None
    assert f"{mode & 0o7777:04o}" in problem
    assert "chmod 700 '/home/me/my repo/data/online'" in problem


def test_private_dir_problem_refuses_another_owner_and_non_directories() -> None:
    problem = private_dir_problem(P, DIR | 0o700, owner=0, uid=1000)
    assert problem is not None and "uid 0" in problem and "uid 1000" in problem
    for kind in (stat.S_IFLNK, stat.S_IFREG, stat.S_IFSOCK):
        problem = private_dir_problem(P, kind | 0o700, owner=1000, uid=1000)
        assert problem is not None and "not a directory" in problem


def test_check_private_dir_names_the_directory_and_never_changes_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(EmbeddedServerNotTrustedError) as info:
        check_private_dir(shared)
    assert info.value.path == shared and str(shared) in str(info.value)
    assert "0755" in str(info.value) and not info.value.retryable
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    link = tmp_path / "link"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link.symlink_to(private)
    check_private_dir(private)
    with pytest.raises(EmbeddedServerNotTrustedError, match="not a directory"):
        check_private_dir(link, follow_symlinks=False)


def test_config_value_keeps_a_path_one_argument() -> None:
    assert _config_value("/a b/c") == '"/a b/c"'
    assert _config_value('x"y\\z') == '"x\\"y\\\\z"'
    assert _config_value("a\nrequirepass b") == '"a\\x0arequirepass b"'  # no second line
    assert _config_value("") == '""'


def test_url_carries_the_secret_and_the_socket_path_clients_parse(tmp_path: Path) -> None:
    data = tmp_path / "a repo #1 %20" / "data" / "online"
    data.mkdir(parents=True, mode=0o700)
    data.chmod(0o700)
    server = EmbeddedServer(data)
    with pytest.raises(EmbeddedServerError, match="never started"):
        _ = server.url
    secret = "ab" * 32
    (data / "secret").write_text(secret + "\n")
    options = parse_url(server.url)  # type: ignore[no-untyped-call]
    assert options["path"] == str(data / "redis.sock")
    assert options["password"] == secret
    (data / "secret").write_text("")  # an empty secret would be a server without a password
    with pytest.raises(EmbeddedServerError, match="never started"):
        _ = server.url


def test_peer_uid_is_the_user_at_the_other_end_of_a_unix_socket() -> None:
    """The check that keeps the secret from a process of another user: on Linux it
    reads the peer's credentials (a socket pair's other end is this process)."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        uid = embedded._peer_uid(left)
    if hasattr(socket, "SO_PEERCRED"):
        assert uid == os.getuid()
    else:
        assert uid is None


def test_a_lost_secret_file_is_restored_from_the_servers_config(tmp_path: Path) -> None:
    """The server keeps the password its config file gave it: losing the secret file
    must not lock the user out of their own server."""
    data = tmp_path / "online"
    data.mkdir(mode=0o700)
    secret = "ab" * 32
    (data / "redis.conf").write_text(f'port "0"\nrequirepass "{secret}"\n')
    server = EmbeddedServer(data)
    assert server._ensure_secret() == secret
    assert (data / "secret").read_text().strip() == secret
    assert stat.S_IMODE((data / "secret").stat().st_mode) == 0o600
    (data / "secret").unlink()
    (data / "redis.conf").unlink()
    fresh = server._ensure_secret()  # nothing to restore: a new secret
    assert fresh != secret
    assert len(fresh) == 64
