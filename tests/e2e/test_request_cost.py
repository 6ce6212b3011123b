"""What one request can cost the server (issue 20, finding 3): a body of 100,000 unknown
fields got a 9.86 MB 422 listing each, and six at once pushed /v1/health past 7 s. Now a
JSON body that holds more values than any request needs is refused before a route parses
it (api/limits.py JsonShape), with or without a key; a 422 lists the first 20
errors and counts the rest; without a valid key the body is never validated.
(bench/request_cost.py measures /v1/health under a flood; these tests check sizes and the
order of the checks.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from tests.support.floods import flood_body
from tests.support.server import serving
from tests.support.services import EmbeddedApp
from tests.support.tenants import make_tenant


@pytest.fixture
def site(embedded: EmbeddedApp) -> Iterator[tuple[str, dict[str, str]]]:
    _, key = make_tenant(embedded.services.engine, "acme", roles=("submitter",))
    with serving(create_app(embedded.api)) as url:
        yield url, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def test_a_body_of_many_unknown_fields_is_refused_before_validation(
    site: tuple[str, dict[str, str]],
) -> None:
    url, auth = site
    body = flood_body()
    assert len(body) < 1_000_000  # under the body limit: this is about what it costs
    for headers in (auth, {"Content-Type": "application/json"}):  # with a key and without
        response = httpx.post(f"{url}/v1/jobs", content=body, headers=headers, timeout=120)
        assert response.status_code == 422, response.text[:500]
        assert len(response.content) < 2_000
        assert "more than 10000 JSON values" in response.json()["detail"]
    deep_list = b'{"question": "q", "user_id": "u", "metadata": {"a": [' + b"0," * 30_000 + b"0]}}"
    response = httpx.post(f"{url}/v1/jobs", content=deep_list, headers=auth, timeout=60)
    assert "more than 10000 JSON values" in response.json()["detail"]


def test_a_422_lists_the_first_20_errors_and_counts_the_rest(
    site: tuple[str, dict[str, str]],
) -> None:
    url, auth = site
    response = httpx.post(f"{url}/v1/jobs", content=flood_body(900), headers=auth, timeout=60)
    assert response.status_code == 422, response.text[:500]
    problem = response.json()
    assert len(problem["errors"]) == 20 and problem["error_count"] == 900
    assert problem["detail"].endswith("and 880 more errors")
    assert len(response.content) < 5_000


def test_without_a_valid_key_the_body_is_not_validated(site: tuple[str, dict[str, str]]) -> None:
    url, _ = site
    for headers in ({}, {"Authorization": "Bearer rl_nope_nope"}):
        response = httpx.post(
            f"{url}/v1/jobs",
            content=flood_body(900),
            headers={"Content-Type": "application/json", **headers},
            timeout=60,
        )
        assert response.status_code == 401, response.text[:300]


def test_a_body_within_the_shape_still_reaches_its_route(
    site: tuple[str, dict[str, str]],
) -> None:
    url, auth = site
    job = {"question": "How many days of annual leave?", "user_id": "u-1", "metadata": {"k": 1}}
    response = httpx.post(f"{url}/v1/jobs", json=job, headers=auth, timeout=60)
    assert response.status_code == 202, response.text
