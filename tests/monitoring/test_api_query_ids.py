"""Integer query parameters of the monitoring API: out of a database id's range is a 400, not a 500.

`make fuzz` (schemathesis, 300 examples per operation) found
GET /api/v1/monitoring-batches/?monitor=-82328974384129540096 answering 500: int() read it and
SQLite refused to bind it (OverflowError). PostgreSQL refuses it too (bigint out of range).
"""

import pytest

from tests.monitoring.test_api import BATCHES, client


@pytest.mark.parametrize("value", ["82328974384129540096", "-82328974384129540096", str(2**63)])
def test_a_monitor_filter_beyond_a_64_bit_id_is_a_400_with_the_error_contract(shop, value):
    response = client(shop.world.engineer).get(BATCHES, {"monitor": value})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "monitor" in error["fields"]


@pytest.mark.parametrize("value", [str(2**63 - 1), "-1", "0"])
def test_a_monitor_filter_inside_the_range_is_an_empty_list_when_nothing_matches(shop, value):
    response = client(shop.world.engineer).get(BATCHES, {"monitor": value})
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []
