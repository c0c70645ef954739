"""An eager process runs an outbox row's task even when nothing in it imported the task's module.

A management command (`load_demo`, `relay_outbox`) or the development server runs outbox rows
in-process under Celery eager, and only a worker imports every app's `tasks` module at start:
the row names its task, and the process must register it first. The test uses a fresh process,
as `make demo` does, because the test run itself has imported every task module long ago.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"DEBUG": "1", "ATTEST_VAR_DIR": str(tmp_path)})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_relay_outbox_in_a_fresh_eager_process_runs_a_task_of_a_module_it_never_imported(tmp_path):
    # given: the embedded default (SQLite, Celery eager) with one pending row
    assert _manage(tmp_path, "migrate", "--noinput", "-v0").returncode == 0
    made = _manage(tmp_path, "shell", "-c", "from governance.models import OutboxMessage; "
                   "OutboxMessage.objects.create(task_name='governance.tasks.outbox_prune_task', args=[])")
    assert made.returncode == 0, made.stderr[-2000:]
    # when
    relayed = _manage(tmp_path, "relay_outbox")
    # then: the task ran in-process (the row is sent and carries no error)
    assert relayed.returncode == 0, relayed.stderr[-2000:]
    assert "outbox: 1 sent, 0 pending" in relayed.stdout
    assert "NotRegistered" not in relayed.stderr
    row = _manage(tmp_path, "shell", "-c", "from governance.models import OutboxMessage; "
                  "m = OutboxMessage.objects.get(); print(repr(m.last_error), m.sent_at is not None)")
    assert row.stdout.strip().splitlines()[-1] == "'' True", row.stdout + row.stderr[-2000:]
