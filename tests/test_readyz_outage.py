"""/readyz answers 503 while the database is unreachable and 200 again after (CONTRACT.md, issue 8).

Nothing global is stopped: the default connection is pointed at a closed port on 127.0.0.1
(PostgreSQL) or at a file in a directory that does not exist (SQLite), then pointed back.
"""

import socket

import pytest
from django.db import connection


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_while_the_database_is_unreachable_and_200_after(client, tmp_path):
    # given: ready
    assert client.get("/readyz").status_code == 200
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    else:
        connection.settings_dict["NAME"] = str(tmp_path / "missing-dir" / "db.sqlite3")
    try:
        # when: the database cannot be reached
        down = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    # then
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["checks"]["database"].startswith("error: ")
    # and when it answers again
    back = client.get("/readyz")
    assert back.status_code == 200
    assert back.json()["checks"]["database"] == "ok"
