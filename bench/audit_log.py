"""Audit log benchmark (issue 3, item 10): append, concurrent append, verification, inclusion proofs.

    python bench/audit_log.py            # full size (under 5 minutes on 2 cores)
    python bench/audit_log.py --quick    # under a minute

Everything is measured in one run, Attest next to its peer:

* append, 1 writer: one transaction with one `audit_event_record()` (chained on commit by
  the sequencer) vs a raw single-row INSERT+COMMIT of a comparable row into a plain table of
  the same database, through the same driver connection (same durability settings);
* append, 8 writers (8 OS processes): the same two loops in 8 processes at once;
* verification: `governance.audit_verify.audit_log_verify()` over every stored event vs raw
  `hashlib.sha256` over the same bytes (prev hash + canonical JSON of each event);
* inclusion proof at 10^6 leaves (10^4 with --quick) with `governance.merkle`: proof size in
  hashes, generation and verification time.

SQLite (a temp file) is always measured; PostgreSQL when reachable (`--database-url`, else
$DATABASE_URL, else postgres://postgres@127.0.0.1:5432/attest_bench), in a scratch database
created for the run and dropped after it. Each database runs in a child process (Django binds
one database per process); the parent prints the tables and the closing JSON line.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    ScratchDatabase,
    django_setup,
    parse_args,
    postgres_url_choose,
    rate,
    result_print,
    table_print,
    timed,
)

BENCH = "audit_log"
GOAL = 0.5
WRITERS = 8

# (full, quick)
SIZES = {
    "append_1w": (3000, 300),         # Attest appends by one writer
    "raw_1w": (6000, 600),            # raw INSERT+COMMIT by one writer
    "append_8w": (500, 40),           # per process (8 x 500, as RELIABILITY.md's concurrency test)
    "raw_8w": (1500, 120),            # per process
    "verify_events": (50_000, 4_000),  # events in the log when verification is timed
    "merkle_leaves": (1_000_000, 10_000),
    "proof_samples": (300, 100),
}


def size(name: str, quick: bool) -> int:
    full, small = SIZES[name]
    return small if quick else full


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# --- the rows both sides write --------------------------------------------------------------

RAW_DDL = {
    "sqlite": """CREATE TABLE bench_raw_event (
        id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp datetime NOT NULL, actor_json text NOT NULL,
        action varchar(100) NOT NULL, object_type varchar(100) NOT NULL, object_id varchar(100) NOT NULL,
        object_repr varchar(300) NOT NULL, payload_json text NOT NULL, correlation_id varchar(64) NOT NULL)""",
    "postgresql": """CREATE TABLE bench_raw_event (
        id bigserial PRIMARY KEY, timestamp timestamptz NOT NULL, actor_json text NOT NULL,
        action varchar(100) NOT NULL, object_type varchar(100) NOT NULL, object_id varchar(100) NOT NULL,
        object_repr varchar(300) NOT NULL, payload_json text NOT NULL, correlation_id varchar(64) NOT NULL)""",
}


def _attest_append(i: int) -> None:
    from django.db import transaction

    from governance.audit import AuditAction, audit_event_record

    with transaction.atomic():
        audit_event_record(
            actor=None, system="bench", action=AuditAction.MODEL_REGISTERED, object_type="registry.registeredmodel",
            object_id=i, object_repr=f"credit-risk-{i}", after={"name": f"credit-risk-{i}", "team": "risk"},
        )


def _raw_loop(n: int, offset: int = 0) -> None:
    """n single-row INSERT+COMMIT transactions on Django's own driver connection (same settings)."""
    import datetime as dt
    import uuid

    from django.db import connection

    from governance.canonical import canonical_json

    connection.ensure_connection()
    raw = connection.connection  # psycopg.Connection or sqlite3.Connection, in autocommit mode
    placeholder = "%s" if connection.vendor == "postgresql" else "?"
    sql = (f"INSERT INTO bench_raw_event (timestamp, actor_json, action, object_type, object_id, object_repr, "
           f"payload_json, correlation_id) VALUES ({', '.join([placeholder] * 8)})")
    begin = "BEGIN IMMEDIATE" if connection.vendor == "sqlite" else "BEGIN"
    cursor = raw.cursor()
    actor = canonical_json({"system": "bench"})
    for k in range(offset, offset + n):
        params = (
            dt.datetime.now(dt.UTC) if connection.vendor == "postgresql" else dt.datetime.now(dt.UTC).isoformat(),
            actor, "registry.model.registered", "registry.registeredmodel", str(k), f"credit-risk-{k}",
            canonical_json({"after": {"name": f"credit-risk-{k}", "team": "risk"}, "before": None, "reason": None}),
            uuid.uuid4().hex,
        )
        cursor.execute(begin)
        cursor.execute(sql, params)
        cursor.execute("COMMIT")
    cursor.close()


def _attest_loop(n: int, offset: int = 0) -> None:
    for k in range(offset, offset + n):
        _attest_append(k)


def _worker(kind: str, n: int, offset: int, barrier: Any, results: Any) -> None:
    from django.db import connections

    connections.close_all()  # never share the parent's socket or file handle
    loop = _attest_loop if kind == "attest" else _raw_loop
    loop(1, offset)  # warm up: connect, prepare, import
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    loop(n - 1, offset + 1)
    results.put((start, time.perf_counter(), time.process_time() - cpu))
    connections.close_all()


def concurrent_rate(kind: str, per_process: int, offset: int) -> tuple[float, float]:
    """(events/s, client CPU ms per event) of WRITERS processes each running `per_process` transactions.

    The rate runs from the first start to the last end. The CPU figure is the writers' own
    (Python + driver) CPU time: on a 2-core machine it tells whether the clients, not the
    database or a lock, are the bottleneck.
    """
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WRITERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(kind, per_process, offset + p * per_process, barrier, results))
             for p in range(WRITERS)]
    for proc in procs:
        proc.start()
    spans = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"{kind} writer exited with {proc.exitcode}")
    events = WRITERS * (per_process - 1)
    return (rate(events, max(e for _, e, _ in spans) - min(s for s, _, _ in spans)),
            sum(c for _, _, c in spans) / events * 1000)


def chain_state() -> dict[str, Any]:
    from django.db.models import Max

    from governance.models import AuditChainHead, AuditEvent, AuditQueueEntry

    head = AuditChainHead.objects.get(pk=1)
    count = AuditEvent.objects.count()
    max_seq = AuditEvent.objects.aggregate(m=Max("seq"))["m"] or 0
    return {"count": count, "queued": AuditQueueEntry.objects.count(),
            "gapless": count == max_seq == head.seq}


def log_fill(total: int) -> None:
    """Grow the log to `total` events through the real writer, 500 events per transaction."""
    from django.db import transaction

    from governance.audit import AuditAction, audit_event_record, audit_log_sequence
    from governance.models import AuditEvent

    have = AuditEvent.objects.count()
    k = 10_000_000
    while have < total:
        step = min(500, total - have)
        with transaction.atomic():
            for _ in range(step):
                k += 1
                audit_event_record(
                    actor=None, system="bench", action=AuditAction.MODEL_UPDATED,
                    object_type="registry.registeredmodel", object_id=k, object_repr=f"credit-risk-{k}",
                    before={"stage": "staging"}, after={"stage": "production"}, reason="benchmark fill",
                )
        have += step
    audit_log_sequence()


def verification_rates() -> dict[str, Any]:
    """(events/s of the verifier, events/s of raw sha256 over the same bytes, which verifier)."""
    from governance.audit import audit_event_canonical
    from governance.canonical import GENESIS_HASH, canonical_bytes, event_hash
    from governance.models import AuditEvent

    events = list(AuditEvent.objects.order_by("seq"))
    count = len(events)
    messages = []
    for event in events:
        body = audit_event_canonical(event)
        messages.append(bytes.fromhex(event.prev_hash) + canonical_bytes(body))
    del events

    def hash_all() -> str:
        digest = ""
        sha256 = hashlib.sha256
        for message in messages:
            digest = sha256(message).hexdigest()
        return digest

    raw_seconds = min(timed(hash_all)[0] for _ in range(3))

    try:
        verify = importlib.import_module("governance.audit_verify").audit_log_verify
        which = "governance.audit_verify.audit_log_verify()"
    except (ImportError, AttributeError):
        verify = None
        which = "loop over stored events with governance.canonical.event_hash (audit_verify.py not landed)"

    def fallback() -> bool:
        prev = GENESIS_HASH
        for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
            if event.prev_hash != prev or event_hash(prev, audit_event_canonical(event)) != event.hash:
                return False
            prev = event.hash
        return True

    seconds, outcome = timed(verify if verify is not None else fallback)
    ok = _verify_ok(outcome)
    return {"verify_count": count, "verify_per_s": rate(count, seconds),
            "verify_raw_hash_per_s": rate(count, raw_seconds), "verify_ok": ok, "verifier": which}


def _verify_ok(outcome: Any) -> bool:
    """Whatever shape the verifier returns (bool, object with .ok, dict with "ok"), did it say OK?"""
    if isinstance(outcome, bool):
        return outcome
    if isinstance(outcome, dict):
        return bool(outcome.get("ok"))
    if hasattr(outcome, "ok"):
        return bool(outcome.ok)
    return outcome is None


# --- child processes ---------------------------------------------------------------------------

def child_database(url: str | None, quick: bool) -> dict[str, Any]:
    with ScratchDatabase(url, tag="pg" if url else "sqlite") as scratch:
        log(f"{scratch.vendor}: migrating a scratch database")
        django_setup(scratch.url, scratch.var_dir)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(RAW_DDL[connection.vendor])
        out: dict[str, Any] = {"vendor": connection.vendor}

        for key, loop, offset in (("raw_1w", _raw_loop, 1000), ("append_1w", _attest_loop, 5000)):
            n = size(key, quick)
            loop(50, offset - 100)  # warm up: connection, statement caches, imports
            cpu = time.process_time()
            out[f"{key}_per_s"] = rate(n, timed(lambda loop=loop, n=n, offset=offset: loop(n, offset))[0])
            out[f"{key}_cpu_ms"] = (time.process_time() - cpu) / n * 1000
        log(f"{scratch.vendor}: 1 writer done: {out['append_1w_per_s']:.0f}/s vs raw {out['raw_1w_per_s']:.0f}/s")

        out["raw_8w_per_s"], out["raw_8w_cpu_ms"] = concurrent_rate("raw", size("raw_8w", quick), 100_000)
        before = chain_state()["count"]
        per = size("append_8w", quick)
        out["append_8w_per_s"], out["append_8w_cpu_ms"] = concurrent_rate("attest", per, 200_000)
        state = chain_state()
        out["append_8w_gapless"] = (state["gapless"] and state["queued"] == 0
                                    and state["count"] == before + WRITERS * per)
        log(f"{scratch.vendor}: 8 writers done: {out['append_8w_per_s']:.0f}/s vs raw {out['raw_8w_per_s']:.0f}/s")

        log_fill(size("verify_events", quick))
        out.update(verification_rates())
        log(f"{scratch.vendor}: verification done: {out['verify_per_s']:.0f}/s "
            f"vs raw {out['verify_raw_hash_per_s']:.0f}/s")
        from django.db import connections

        connections.close_all()
        return out


def child_merkle(quick: bool) -> dict[str, Any]:
    """Proof size and time at 10^6 leaves with governance.merkle's in-memory node store."""
    try:
        merkle = importlib.import_module("governance.merkle")
    except ImportError as exc:
        return {"error": f"governance.merkle not importable: {exc}"}
    return merkle_measure(merkle, size("merkle_leaves", quick), size("proof_samples", quick))


def merkle_measure(merkle: Any, leaves: int, samples: int) -> dict[str, Any]:
    """Build the in-memory node store over `leaves` synthetic event hashes, then time proofs."""
    event_hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(leaves)]
    build_s, store = timed(lambda: merkle.MemoryNodeStore(event_hashes))
    root = store.root()
    rng = random.Random(6962)
    indices = [0, leaves - 1] + [rng.randrange(leaves) for _ in range(samples - 2)]
    proof_ms, verify_ms, sizes, valid = [], [], [], 0
    for index in indices:
        start = time.perf_counter()
        proof = store.inclusion_proof(index, leaves)
        middle = time.perf_counter()
        ok = merkle.verify_inclusion(index, leaves, merkle.leaf_hash(event_hashes[index]), proof, root)
        end = time.perf_counter()
        proof_ms.append((middle - start) * 1000)
        verify_ms.append((end - middle) * 1000)
        sizes.append(len(proof))
        valid += ok
    return {
        "leaves": leaves, "store": "governance.merkle.MemoryNodeStore", "build_s": round(build_s, 2),
        "proofs": len(indices), "proofs_valid": valid, "proof_hashes_max": max(sizes),
        "proof_ms_mean": round(statistics.fmean(proof_ms), 4), "proof_ms_max": round(max(proof_ms), 4),
        "verify_ms_mean": round(statistics.fmean(verify_ms), 4), "verify_ms_max": round(max(verify_ms), 4),
    }


def run_child(kind: str, quick: bool, url: str | None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
    if quick:
        cmd.append("--quick")
    if url:
        cmd += ["--database-url", url]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child {kind} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _extra(parser) -> None:
    parser.add_argument("--child", choices=["sqlite", "postgresql", "merkle"], help=argparse_hidden())


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks, so scratch databases are dropped


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(__doc__.splitlines()[0], extra=_extra)
    if args.child == "merkle":
        print(json.dumps(child_merkle(args.quick)))
        return 0
    if args.child in ("sqlite", "postgresql"):
        print(json.dumps(child_database(args.database_url if args.child == "postgresql" else None, args.quick)))
        return 0

    started = time.perf_counter()
    pg_url = postgres_url_choose(args)
    dbs = {"sqlite": run_child("sqlite", args.quick, None)}
    if pg_url:
        dbs["postgresql"] = run_child("postgresql", args.quick, pg_url)
    merkle = run_child("merkle", args.quick, None)
    return report(dbs, merkle, args.quick, time.perf_counter() - started)


def report(dbs: dict[str, dict[str, Any]], merkle: dict[str, Any], quick: bool, elapsed: float) -> int:
    rows = []
    for vendor, d in dbs.items():
        r1 = d["append_1w_per_s"] / d["raw_1w_per_s"]
        r8 = d["append_8w_per_s"] / d["raw_8w_per_s"]
        rv = d["verify_per_s"] / d["verify_raw_hash_per_s"]
        pg = vendor == "postgresql"
        rows += [
            (f"{vendor}: append, 1 writer", d["append_1w_per_s"], "raw INSERT+COMMIT", d["raw_1w_per_s"], r1,
             GOAL, r1 >= GOAL, f"{d['append_1w_cpu_ms']:.3f} / {d['raw_1w_cpu_ms']:.3f}"),
            (f"{vendor}: append, {WRITERS} writers", d["append_8w_per_s"], f"raw INSERT+COMMIT, {WRITERS} clients",
             d["raw_8w_per_s"], r8, GOAL if pg else None, (r8 >= GOAL) if pg else None,
             f"{d['append_8w_cpu_ms']:.3f} / {d['raw_8w_cpu_ms']:.3f}"),
            (f"{vendor}: verify {d['verify_count']:,} events", d["verify_per_s"], "raw sha256, same bytes",
             d["verify_raw_hash_per_s"], rv, GOAL, rv >= GOAL, "-"),
        ]
    table_print(f"Audit log, Attest vs peer, events/s ({'quick' if quick else 'full'} size; "
                f"ratio = Attest / peer; last column: client CPU ms per event, Attest / peer)",
                ["measure", "Attest /s", "peer", "peer /s", "ratio", "goal", "met", "CPU ms/event"], rows)

    leaves = merkle.get("leaves")
    proof_rows = [
        ("inclusion proof size (hashes)", merkle.get("proof_hashes_max"), 20, _le(merkle.get("proof_hashes_max"), 20)),
        ("inclusion proof generation, mean (ms)", merkle.get("proof_ms_mean"), 5.0,
         _lt(merkle.get("proof_ms_mean"), 5)),
        ("inclusion proof generation, max (ms)", merkle.get("proof_ms_max"), None, None),
        ("inclusion proof verification, mean (ms)", merkle.get("verify_ms_mean"), 5.0,
         _lt(merkle.get("verify_ms_mean"), 5)),
        ("tree build, in-memory store (s)", merkle.get("build_s"), None, None),
    ]
    table_print(f"Inclusion proofs at {leaves:,} leaves ({merkle.get('store', '-')})" if leaves else
                f"Inclusion proofs: not measured ({merkle.get('error')})", ["measure", "Attest", "goal", "met"],
                proof_rows)
    for vendor, d in dbs.items():
        print(f"\n{vendor}: 8-writer chain gapless and fully sequenced: {d['append_8w_gapless']}; "
              f"verifier said OK: {d['verify_ok']} ({d['verifier']})")
    print(f"elapsed {elapsed:.1f} s")

    main_db = "postgresql" if "postgresql" in dbs else "sqlite"
    m = dbs[main_db]
    goals = {
        "append_1w_sqlite": dbs["sqlite"]["append_1w_per_s"] / dbs["sqlite"]["raw_1w_per_s"] >= GOAL,
        "append_1w_postgresql": (dbs["postgresql"]["append_1w_per_s"] / dbs["postgresql"]["raw_1w_per_s"] >= GOAL
                                 if "postgresql" in dbs else None),
        "append_8w_postgresql": (dbs["postgresql"]["append_8w_per_s"] / dbs["postgresql"]["raw_8w_per_s"] >= GOAL
                                 and dbs["postgresql"]["append_8w_gapless"] if "postgresql" in dbs else None),
        "verify": m["verify_per_s"] / m["verify_raw_hash_per_s"] >= GOAL and m["verify_ok"],
        "proof_size": _le(merkle.get("proof_hashes_max"), 20),
        "proof_time": _lt(merkle.get("proof_ms_mean"), 5) and _lt(merkle.get("verify_ms_mean"), 5),
        "proofs_valid": merkle.get("proofs") is not None and merkle.get("proofs_valid") == merkle.get("proofs"),
    }
    figures: dict[str, Any] = {"main_database": main_db, "quick": quick, "elapsed_s": round(elapsed, 1)}
    for vendor, d in dbs.items():
        for key in ("append_1w_per_s", "raw_1w_per_s", "append_8w_per_s", "raw_8w_per_s", "verify_per_s",
                    "verify_raw_hash_per_s", "verify_count", "append_1w_cpu_ms", "raw_1w_cpu_ms",
                    "append_8w_cpu_ms", "raw_8w_cpu_ms"):
            figures[f"{vendor}_{key}"] = round(d[key], 3) if isinstance(d[key], float) else d[key]
        figures[f"{vendor}_append_8w_gapless"] = d["append_8w_gapless"]
    figures.update({f"merkle_{k}": v for k, v in merkle.items()})
    figures["goals"] = goals
    ratio = min(m["append_1w_per_s"] / m["raw_1w_per_s"], m["verify_per_s"] / m["verify_raw_hash_per_s"])
    result_print(bench=BENCH, figures=figures, peer="raw INSERT+COMMIT / raw hashlib.sha256", ratio=ratio,
                 goal=GOAL, met=all(v is True for v in goals.values()))
    return 0


def _le(value: Any, bound: float) -> bool | None:
    return None if value is None else value <= bound


def _lt(value: Any, bound: float) -> bool | None:
    return None if value is None else value < bound


if __name__ == "__main__":
    random.seed(6962)
    sys.exit(main())
