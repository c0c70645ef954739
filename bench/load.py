"""Load (issue 10): a realistic mix of what CI and people send, against gunicorn, then the audit log checked.

A scratch database (PostgreSQL by default) gets a team, its CI identity, an approved model and a
pool of pending approval requests; gunicorn serves `mlops_site.wsgi` on loopback; a closed-loop
load generator (C connections spread over a few processes, keep-alive) sends for S seconds:

  gate        50 %  POST /api/v1/gate/ (CI token)                       expects 200 "allowed":true
  register    12 %  POST /api/v1/model-versions/ by https reference     expects 201 (a new version each time)
  lists       35 %  GET models/, model-versions/, approval-requests/, deployments/  expects 200
  sign         3 %  POST approval-requests/{id}/sign/ with the password  expects 201 (each request once)

It reports p50/p99 and errors per endpoint (errors must be 0), then, in a separate process, runs
the audit-log verifier and accounts for every event: gate events == stored decisions == gate
answers, registration events == new versions == 201s, signature events == signatures == 201s,
and the queue empty. `--quick`: 8 s at concurrency 8 (`make bench`); default 60 s at 32.
The closing JSON line follows CONTRACT.md ("Benchmarks"); there is no peer.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    REPO_ROOT,
    ScratchDatabase,
    bench_user,
    django_setup,
    parse_args,
    postgres_url_choose,
    result_print,
    table_print,
)
from bench.gate import Server, free_port, log  # noqa: E402

PASSWORD = "bench-Password-123"
MIX = (("gate", 50), ("register", 12), ("lists", 35), ("sign", 3))
LISTS = ("/api/v1/models/", "/api/v1/model-versions/?page_size=20", "/api/v1/approval-requests/?status=pending",
         "/api/v1/deployments/")
THREADS_PER_PROCESS = 8


# --- child processes -----------------------------------------------------------------------------

def child_setup(database_url: str, var_dir: Path, pool: int) -> dict[str, Any]:
    django_setup(database_url, var_dir)
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from governance.services.approvals import approval_request_open, approval_request_sign
    from governance.services.tokens import api_token_issue
    from registry import services as registry

    def person(username: str, role: str) -> User:
        return bench_user(username, role, password=PASSWORD, last_name="Load")

    engineer, ci = person("eng", "ml_engineer"), person("ci", "ci_service")
    validators = [person(f"val{i}", "model_validator") for i in range(2)]
    compliance = person("comp", "compliance_officer")
    with transaction.atomic():
        team = registry.team_create(actor=None, name="risk")
    team.members.add(engineer, ci)
    model = registry.model_register(actor=engineer, name="credit-scoring", team=team, risk_tier="limited")
    digest = "5" * 64
    live = registry.model_version_register(actor=engineer, model=model, declared_sha256=digest,
                                           artifact_uri=f"https://models.example.com/{digest}.skops",
                                           authors=[engineer], metrics={"accuracy": 0.91})
    approved = approval_request_open(actor=engineer, kind="deployment", model_version=live, environment="production")
    for signer in (validators[0], compliance):
        approval_request_sign(actor=signer, request=approved, password=PASSWORD, meaning="approve")
    # Pending requests for the signature share of the mix: one per version (a version takes one
    # open request per environment), each signed once by one validator during the load.
    pending = []
    other = registry.model_register(actor=engineer, name="churn", team=team, risk_tier="limited")
    for index in range(pool):
        sha = f"{index:064x}"
        version = registry.model_version_register(actor=engineer, model=other, declared_sha256=sha,
                                                  artifact_uri=f"https://models.example.com/{sha}.skops")
        pending.append(approval_request_open(actor=engineer, kind="deployment", model_version=version,
                                             environment="staging").pk)
    tokens = [api_token_issue(actor=None, user=ci)[1] for _ in range(4)]
    signer_tokens = {v.username: api_token_issue(actor=None, user=v)[1] for v in validators}
    out = {"vendor": connection.vendor, "ci_tokens": tokens, "signer_tokens": signer_tokens, "model": model.name,
           "version": live.version, "artifact_sha256": live.artifact_sha256, "pending": pending,
           "other_model": other.name, "approved": approved.status}
    connection.close()
    return out


def child_counts(database_url: str, var_dir: Path) -> dict[str, Any]:
    django_setup(database_url, var_dir, migrate=False)
    from governance.audit import AuditAction
    from governance.audit_verify import audit_log_verify
    from governance.models import AuditEvent, AuditQueueEntry, GateDecision, Signature
    from registry.models import ModelVersion

    def events(action: str) -> int:
        return AuditEvent.objects.filter(action=action).count()

    result = audit_log_verify()
    return {"gate_events": events(AuditAction.GATE_EVALUATED), "decisions": GateDecision.objects.count(),
            "register_events": events(AuditAction.MODEL_VERSION_REGISTERED), "versions": ModelVersion.objects.count(),
            "sign_events": events(AuditAction.APPROVAL_SIGNED), "signatures": Signature.objects.count(),
            "events": AuditEvent.objects.count(), "queued": AuditQueueEntry.objects.count(),
            "verify_ok": result.ok, "verify_line": result.as_line()}


# --- the load ------------------------------------------------------------------------------------

def _request(kind: str, world: dict[str, Any], rng: random.Random, state: dict[str, Any]):
    """(kind, method, path, body, headers, expected status, a byte string the answer must contain)."""
    token = world["ci_tokens"][state["slot"] % len(world["ci_tokens"])]
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if kind == "gate":
        body = {"model": world["model"], "version": world["version"], "environment": "production",
                "artifact_sha256": world["artifact_sha256"]}
        return kind, "POST", "/api/v1/gate/", body, headers, 200, b'"allowed":true'
    if kind == "register":
        sha = f"{state['slot']:08x}{state['seq']:08x}{rng.getrandbits(192):048x}"
        body = {"model": world["other_model"], "artifact_uri": f"https://models.example.com/{sha}.skops",
                "artifact_sha256": sha}
        return kind, "POST", "/api/v1/model-versions/", body, headers, 201, None
    signers = sorted(world["signer_tokens"])
    if kind == "sign" and state["pending"]:
        pk = state["pending"].pop()
        signer = world["signer_tokens"][signers[state["slot"] % len(signers)]]
        headers = {"Authorization": f"Token {signer}", "Content-Type": "application/json"}
        return (kind, "POST", f"/api/v1/approval-requests/{pk}/sign/",
                {"password": PASSWORD, "meaning": "approve", "reason": "load"}, headers, 201, None)
    path = rng.choice(LISTS)
    if "approval-requests" in path:
        headers = {"Authorization": f"Token {world['signer_tokens'][signers[0]]}"}
    return "lists", "GET", path, None, headers, 200, b'"results"'


def _thread(port: int, world: dict[str, Any], slot: int, pending: list[int], deadline: float, out: list) -> None:
    rng = random.Random(slot)
    state = {"slot": slot, "seq": 0, "pending": pending}
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.monotonic() < deadline:
        state["seq"] += 1
        kind, method, path, body, headers, expect, needle = _request(rng.choice(kinds), world, rng, state)
        started = time.perf_counter()
        error = None
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
            response = conn.getresponse()
            raw = response.read()
            if response.status != expect or (needle and needle not in raw):
                error = f"{method} {path}: {response.status} {raw[:200]!r}"
            if (response.getheader("Connection") or "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            error = f"{method} {path}: {type(exc).__name__}: {exc}"
            conn.close()
        out.append((kind, (time.perf_counter() - started) * 1000, error))
    conn.close()


def _process(port: int, world: dict[str, Any], slots: list[int], seconds: float, barrier, queue) -> None:
    import threading

    results: list = []
    shares = {slot: [pk for i, pk in enumerate(world["pending"]) if i % world["concurrency"] == slot]
              for slot in slots}  # each thread signs its own share of the pending requests, once each
    barrier.wait()  # every process ready: the clock starts now
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=_thread, args=(port, world, slot, shares[slot], deadline, results))
               for slot in slots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


def load_mix(port: int, world: dict[str, Any], concurrency: int, seconds: float) -> tuple[list, float]:
    world = {**world, "concurrency": concurrency}
    processes = max(1, min(4, (concurrency + THREADS_PER_PROCESS - 1) // THREADS_PER_PROCESS))
    groups = [list(range(concurrency))[p::processes] for p in range(processes)]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(port, world, group, seconds, barrier, queue), daemon=True)
             for group in groups]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.monotonic()
    results: list = []
    for _ in procs:
        results.extend(queue.get(timeout=seconds + 300))
    elapsed = time.monotonic() - started
    for proc in procs:
        proc.join(timeout=30)
    return results, elapsed


def warm_up(port: int, world: dict[str, Any], requests: int) -> None:
    """Unmeasured reads, so every worker has imported, connected and filled its caches (no state change)."""
    headers = {"Authorization": f"Token {world['ci_tokens'][0]}"}
    for index in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", LISTS[index % 2], headers=headers)
        conn.getresponse().read()
        conn.close()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def main() -> int:
    def extra(parser):
        parser.add_argument("--seconds", type=float, default=None, help="load duration (default 60, --quick 8)")
        parser.add_argument("--concurrency", type=int, default=None, help="connections (default 32, --quick 8)")
        parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
        parser.add_argument("--child", default=None, help=argparse_suppress())
        parser.add_argument("--var-dir", default=None, help=argparse_suppress())
        parser.add_argument("--pool", type=int, default=None, help=argparse_suppress())

    args = parse_args(__doc__.splitlines()[0], extra=extra)
    if args.child:
        var_dir = Path(args.var_dir)
        out = child_setup(args.database_url, var_dir, args.pool) if args.child == "setup" else \
            child_counts(args.database_url, var_dir)
        print(json.dumps(out))
        return 0
    seconds = args.seconds or (8.0 if args.quick else 60.0)
    concurrency = args.concurrency or (8 if args.quick else 32)
    pool = max(20, int(seconds * concurrency * 0.05))
    postgres = postgres_url_choose(args)
    with ScratchDatabase(postgres, tag="loadpg" if postgres else "loadsqlite") as scratch:
        log(f"{scratch.vendor}: migrating a scratch database, approving a model, opening {pool} requests")
        world = _child("setup", scratch, pool)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
        env.update({"DATABASE_URL": scratch.url, "ATTEST_VAR_DIR": str(scratch.var_dir), "DEBUG": "0",
                    "SECRET_KEY": "bench-only-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
                    "ATTEST_ALLOW_KEY_FILE": "1", "DB_CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING",
                    # The rate limit is a separate test (tests/): here it would only measure itself.
                    "ATTEST_THROTTLE_TOKEN_RATE": "1000000/min", "ATTEST_THROTTLE_USER_RATE": "1000000/min",
                    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"})
        env.pop("CELERY_BROKER_URL", None)  # notifications and sequencing run in-process after commit
        cmd = [str(Path(sys.executable).parent / "gunicorn"), "mlops_site.wsgi:application", "--bind",
               f"127.0.0.1:{port}", "--workers", str(args.workers), "--worker-class", "gthread", "--threads", "2",
               "--keep-alive", "30", "--backlog", "256", "--timeout", "120", "--log-level", "warning"]
        log(f"{scratch.vendor}: gunicorn on 127.0.0.1:{port}, {args.workers} gthread workers x 2 threads; "
            f"{concurrency} connections for {seconds:.0f} s")
        with Server("gunicorn", cmd, env, port, "/healthz", scratch.var_dir / "gunicorn.log", start_timeout=90):
            warm_up(port, world, requests=8 * args.workers)
            results, elapsed = load_mix(port, world, concurrency, seconds)
        counts = _child("check", scratch, 0)
    by_kind: dict[str, dict[str, Any]] = {}
    for kind, _weight in MIX:
        rows = [r for r in results if r[0] == kind]
        latencies = [r[1] for r in rows]
        errors = [r[2] for r in rows if r[2]]
        by_kind[kind] = {"requests": len(rows), "errors": len(errors), "rps": round(len(rows) / elapsed, 1),
                         "p50_ms": _r(percentile(latencies, 50)), "p99_ms": _r(percentile(latencies, 99)),
                         "mean_ms": _r(statistics.fmean(latencies) if latencies else None),
                         "first_error": errors[0] if errors else None}
    ok = {kind: sum(1 for r in results if r[0] == kind and not r[2]) for kind, _ in MIX}
    accounted = {
        "gate": counts["gate_events"] == counts["decisions"] == ok["gate"],
        "register": counts["register_events"] == counts["versions"] == world["setup_versions"] + ok["register"],
        "sign": counts["sign_events"] == counts["signatures"] == world["setup_signatures"] + ok["sign"],
        "queue_empty": counts["queued"] == 0,
    }
    total_errors = sum(v["errors"] for v in by_kind.values())
    table_print(f"Load: realistic mix, gunicorn on {world['vendor']}, {concurrency} connections, {elapsed:.0f} s",
                ["endpoint", "requests", "rps", "p50 ms", "p99 ms", "errors"],
                [[k, v["requests"], v["rps"], v["p50_ms"], v["p99_ms"], v["errors"]] for k, v in by_kind.items()])
    for kind, value in by_kind.items():
        if value["first_error"]:
            log(f"first {kind} error: {value['first_error']}")
    log(f"audit: {counts['verify_line']}; gate {counts['gate_events']} events / {counts['decisions']} decisions / "
        f"{ok['gate']} answers; register {counts['register_events']} events / {counts['versions']} versions; "
        f"sign {counts['sign_events']} events / {counts['signatures']} signatures; queue {counts['queued']}")
    met = total_errors == 0 and counts["verify_ok"] and all(accounted.values())
    result_print(bench="load", figures={
        "database": world["vendor"], "concurrency": concurrency, "seconds": round(elapsed, 1),
        "requests": len(results), "rps": round(len(results) / elapsed, 1), "errors": total_errors,
        "endpoints": {k: {x: v[x] for x in ("requests", "rps", "p50_ms", "p99_ms", "errors")}
                      for k, v in by_kind.items()},
        "audit_verify_ok": counts["verify_ok"], "audit_events": counts["events"], "accounted": accounted,
    }, peer=None, ratio=None, goal="0 errors, audit log verifies, every state change has its event", met=bool(met))
    return 0 if met else 1


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def _child(kind: str, scratch: ScratchDatabase, pool: int) -> dict[str, Any]:
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--database-url", scratch.url,
           "--var-dir", str(scratch.var_dir), "--pool", str(pool)]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"load child {kind} failed with exit code {done.returncode}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if kind == "setup":
        out["setup_versions"] = 1 + pool
        out["setup_signatures"] = 2
    return out


if __name__ == "__main__":
    raise SystemExit(main())
