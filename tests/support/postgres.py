"""A throwaway PostgreSQL server for tests (e.g. as an MLflow backend store).

Usage in a fixture::

    require_component(postgres_unavailable_reason())  # tests/support/required.py
    with running_postgres(tmp_path) as url:   # postgresql://postgres@127.0.0.1:PORT/mlflow
        ...

The server refuses to run as root, so when the tests run as root every server
command goes through ``runuser -u postgres --``. Nothing happens at import time.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence

from .processes import free_port

__all__ = [
    "find_pg_bin_dir",
    "postgres_unavailable_reason",
    "running_postgres",
    "sqlalchemy_url",
]

PG_USER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"


def find_pg_bin_dir() -> pathlib.Path | None:
    """Directory holding initdb, pg_ctl and createdb, or None.

    Looks on PATH first (symlinks resolved, so /usr/local/bin/pg_ctl ->
    /usr/lib/postgresql/15/bin works), then /usr/lib/postgresql/*/bin,
    newest major version first.
    """
    candidates: list[pathlib.Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(pathlib.Path(os.path.realpath(on_path)).parent)

    def version_key(path: str) -> int:
        part = pathlib.Path(path).parent.name
        return int(part) if part.isdigit() else -1

    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True):
        candidates.append(pathlib.Path(found))
    for bin_dir in candidates:
        if all(os.access(bin_dir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres", "createdb")):
            return bin_dir
    return None


def _postgres_uid_gid() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def postgres_unavailable_reason() -> str | None:
    """Why :func:`running_postgres` cannot work here, or None if it can."""
    if find_pg_bin_dir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres, createdb) not found on PATH "
            "or in /usr/lib/postgresql/*/bin; run scripts/install-system-deps.sh"
        )
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root but `runuser` is missing (util-linux); postgres refuses to run as root"
        if _postgres_uid_gid() is None:
            return f"running as root but there is no `{PG_USER}` system user to run the server as"
    return None


def sqlalchemy_url(url: str, driver: str = "psycopg2") -> str:
    """``postgresql://...`` -> ``postgresql+<driver>://...``.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg (v3), so a store
    like MLflow's fails with "No module named 'psycopg'" when only
    psycopg2(-binary) is installed; name the driver explicitly instead.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql+{driver}://{rest}"


def _traversable_by(path: pathlib.Path, uid: int, gid: int) -> bool:
    """True if ``uid``/``gid`` can search every directory from / down to ``path``."""
    path = path.resolve()
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


def _make_base_dir(tmp_dir: pathlib.Path, owner: tuple[int, int] | None) -> pathlib.Path:
    """Create a private directory for data dir, socket and log.

    Uses ``tmp_dir`` when the server user can reach it and socket paths stay
    short enough; otherwise the system temp dir (pytest's tmp_path is mode 0700
    under root, so ``postgres`` cannot enter it).
    """
    uid, gid = owner if owner is not None else (os.geteuid(), os.getegid())
    for parent in (tmp_dir, pathlib.Path(tempfile.gettempdir()), pathlib.Path("/tmp")):
        if not parent.is_dir() or not _traversable_by(parent, uid, gid):
            continue
        if len(str(parent.resolve())) + len("/pg-XXXXXXXX") > _SOCKET_PATH_MAX:
            continue
        base = pathlib.Path(tempfile.mkdtemp(prefix="pg-", dir=parent)).resolve()
        if owner is not None:
            os.chown(base, uid, gid)
        os.chmod(base, 0o700)
        return base
    raise RuntimeError(f"no directory usable by uid {uid} for a PostgreSQL data dir (tried {tmp_dir}, /tmp)")


def _run(
    cmd: Sequence[str], *, as_postgres: bool, cwd: pathlib.Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run a command (as the postgres user via runuser if needed); raise with output on failure."""
    full = ["runuser", "-u", PG_USER, "--", *cmd] if as_postgres else list(cmd)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    env.pop("PGDATA", None)
    result = subprocess.run(
        full,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed with exit code {result.returncode}: {' '.join(full)}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def _read_tail(path: pathlib.Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


@contextlib.contextmanager
def running_postgres(tmp_dir: pathlib.Path, *, dbname: str = "mlflow") -> Iterator[str]:
    """Start a private PostgreSQL server; yield ``postgresql://postgres@127.0.0.1:PORT/<dbname>``.

    The cluster is initialised with trust auth, listens on 127.0.0.1 only (unix
    socket in its own temp dir), is tuned for speed over durability, and is
    stopped (``pg_ctl stop -m fast``) and deleted on exit.
    """
    reason = postgres_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = find_pg_bin_dir()
    assert bin_dir is not None
    as_postgres = os.geteuid() == 0
    owner = _postgres_uid_gid() if as_postgres else None

    base = _make_base_dir(pathlib.Path(tmp_dir), owner)
    data_dir = base / "data"
    log_file = base / "postgres.log"
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            as_postgres=as_postgres,
            cwd=base,
        )

        port = 0
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port can be taken between probe and bind
            port = free_port()
            _write_conf(data_dir, port=port, socket_dir=base)
            try:
                _run(
                    [
                        str(bin_dir / "pg_ctl"),
                        "-D",
                        str(data_dir),
                        "-l",
                        str(log_file),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    as_postgres=as_postgres,
                    cwd=base,
                    timeout=90,
                )
            except RuntimeError as exc:
                server_log = _read_tail(log_file)
                last_error = RuntimeError(f"{exc}\nserver log tail:\n{server_log}")
                if "could not bind" in server_log or "already in use" in server_log:
                    continue  # lost the port race: try another port
                break
            started = True
            break
        if not started:
            assert last_error is not None
            raise last_error

        _run(
            [
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                PG_USER,
                dbname,
            ],
            as_postgres=as_postgres,
            cwd=base,
        )
        yield f"postgresql://{PG_USER}@127.0.0.1:{port}/{dbname}"
    finally:
        # A timed-out start can leave a server running without `started` set.
        if started or (data_dir / "postmaster.pid").exists():
            _stop(bin_dir, data_dir, base, as_postgres)
        shutil.rmtree(base, ignore_errors=True)


def _write_conf(data_dir: pathlib.Path, *, port: int, socket_dir: pathlib.Path) -> None:
    """Write the test settings into an included file (overwritten on retry)."""
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{socket_dir}'",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        "shared_buffers": "64MB",
        "log_min_messages": "warning",
    }
    override = data_dir / "postgresql.test.conf"
    # Written as root when root: the file only needs to be readable by the server.
    override.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
    os.chmod(override, 0o644)
    main_conf = data_dir / "postgresql.conf"
    text = main_conf.read_text()
    include = "include = 'postgresql.test.conf'\n"
    if include not in text:
        main_conf.write_text(text + "\n" + include)


def _stop(bin_dir: pathlib.Path, data_dir: pathlib.Path, base: pathlib.Path, as_postgres: bool) -> None:
    """Stop the server: fast shutdown, then immediate, then SIGKILL the postmaster."""
    for mode in ("fast", "immediate"):
        try:
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ],
                as_postgres=as_postgres,
                cwd=base,
                timeout=45,
            )
            return
        except (RuntimeError, subprocess.TimeoutExpired):
            continue
    pid_file = data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 9)
        time.sleep(0.5)
