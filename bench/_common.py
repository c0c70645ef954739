"""Shared harness of the benchmarks: arguments, Django set-up on a scratch database, tables, result line.

CONTRACT.md "Benchmarks": `python bench/NAME.py` runs at full size, `--quick` at a small size in
under a minute; each prints a readable table and, as its very last line, one JSON object
{"bench", "figures", "peer", "ratio", "goal", "met"} where ratio > 1 means Attest is better.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/attest_bench"


def parse_args(description: str, argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """--quick, --database-url (else DATABASE_URL, else the local PostgreSQL), --no-postgres."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument(
        "--database-url", default=None,
        help="PostgreSQL server to measure (default: $DATABASE_URL if it is PostgreSQL, else "
             f"{DEFAULT_POSTGRES_URL}); the benchmark creates and drops its own scratch database there",
    )
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


def postgres_url_choose(args: argparse.Namespace) -> str | None:
    """The PostgreSQL URL to measure, or None when none is reachable (SQLite is then the main database)."""
    if args.no_postgres:
        return None
    url = args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES_URL
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    try:
        import psycopg

        with psycopg.connect(_conninfo(url), connect_timeout=3):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable": fall back to SQLite
        print(f"# PostgreSQL at {_redact(url)} not reachable ({type(exc).__name__}); SQLite only", file=sys.stderr)
        return None
    return url


def _conninfo(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}:{parts.port}" if parts.username else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class ScratchDatabase:
    """A fresh database for one run, dropped afterwards (the audit tables refuse TRUNCATE and DELETE).

    SQLite: a file in a temp directory. PostgreSQL: `<name>_scratch_<pid>` on the given server,
    so a run never touches the data of the database the URL names, nor another run's.
    """

    def __init__(self, postgres_url: str | None, tag: str) -> None:
        self.postgres_url = postgres_url
        self.tmp = tempfile.TemporaryDirectory(prefix=f"attest-bench-{tag}-")
        self.var_dir = Path(self.tmp.name)
        self.pg_name: str | None = None
        if postgres_url is None:
            self.url = f"sqlite:///{self.var_dir / 'bench.sqlite3'}"
        else:
            parts = urlsplit(postgres_url)
            base = (parts.path.lstrip("/") or "attest_bench")[:40]
            self.pg_name = f"{base}_scratch_{os.getpid()}_{tag}"
            self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.pg_name, parts.query, ""))

    @property
    def vendor(self) -> str:
        return "sqlite" if self.postgres_url is None else "postgresql"

    def __enter__(self) -> ScratchDatabase:
        if self.pg_name is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}"')
            self._admin(f'CREATE DATABASE "{self.pg_name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pg_name is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        self.tmp.cleanup()

    def _admin(self, sql: str) -> None:
        import psycopg

        parts = urlsplit(_conninfo(self.postgres_url))
        admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)


def django_setup(database_url: str, var_dir: Path, *, migrate: bool = True) -> None:
    """Configure Django on `database_url` with the development defaults (DEBUG=1 settings).

    Settings load with DEBUG=1 (so no SECRET_KEY or host list is needed), then DEBUG is turned
    off at run time: with DEBUG on, Django records every query in connection.queries, a cost a
    deployment never pays and the raw-driver peer would not pay either.
    """
    os.environ["DEBUG"] = "1"
    os.environ["ATTEST_VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlops_site.settings"
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def bench_user(username: str, role: str, *, password: str, last_name: str = "Bench") -> Any:
    """A user of the scratch database in one role's group (after `django_setup`)."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=username, password=password, first_name=username.title(),
                                    last_name=last_name)
    user.groups.add(Group.objects.get(name=role))
    return user


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def fmt(value: Any) -> str:
    """Numbers readable at a glance: 12,345 /s, 0.48, 1.23 ms."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    return str(value)


def table_print(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain-text table (GitHub-markdown compatible, so it pastes into docs/BENCHMARKS.md)."""
    cells = [[fmt(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        aligned = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("| " + " | ".join(aligned) + " |")
    sys.stdout.flush()


def result_print(*, bench: str, figures: dict[str, Any], peer: str | None, ratio: float | None,
                 goal: float | None, met: bool) -> dict[str, Any]:
    """The closing line of every benchmark: exactly one JSON object, nothing printed after it."""
    result = {
        "bench": bench,
        "figures": figures,
        "peer": peer,
        "ratio": None if ratio is None else round(ratio, 4),
        "goal": goal,
        "met": bool(met),
    }
    print(json.dumps(result, sort_keys=False, allow_nan=False))
    sys.stdout.flush()
    return result


# --- a peer's own virtualenv ----------------------------------------------------------------------

def peer_venv_ready(venv: Path, check: str, *, executables: Sequence[str] = ()) -> bool:
    """Whether `venv` has a python (and each of `executables` in bin/) on which the code `check` exits 0."""
    python = venv / "bin" / "python"
    if not python.exists() or not all((venv / "bin" / name).exists() for name in executables):
        return False
    done = subprocess.run([str(python), "-c", check], capture_output=True, timeout=120, check=False)
    return done.returncode == 0


def peer_venv_install(venv: Path, specs: Sequence[str], *, check: str, executables: Sequence[str] = (),
                      quick: bool, pip_timeout: float = 1200) -> str | None:
    """Ensure a benchmark's peer is installed in its own virtualenv (created with this Python, then
    `pip install specs`, then `check` run in it); None when it is ready, else why not, in words.

    --quick never installs (a quick run stays under a minute): it says so instead. A peer is never
    installed into the project's own environment (its pins would fight ours)."""
    if peer_venv_ready(venv, check, executables=executables):
        return None
    if quick:
        return f"not installed in {venv} (--quick never installs; run once at full size)"
    print(f"# installing {' '.join(specs)} into {venv} (once; later runs reuse it)", file=sys.stderr, flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True,
                       timeout=300)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *specs],
                              capture_output=True, text=True, timeout=pip_timeout, check=False)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"install failed: {type(exc).__name__}: {exc}"
    if done.returncode != 0 or not peer_venv_ready(venv, check, executables=executables):
        tail = [line for line in done.stderr.splitlines() if not line.startswith("WARNING")][-3:]
        return f"install failed (pip exit {done.returncode}): {' '.join(tail)[-300:]}"
    return None
