"""Property-based API tests: schemathesis against the live server's /openapi.json.

Every operation in the published spec runs with every role's key (admin, lead, agent,
requester, auditor) and a key nobody issued. Generated requests mix valid and invalid
data (schemathesis' positive and negative modes). A stateful run then chains operations
(open a ticket, then act on it; raise an escalation, then work it; register an agent,
then read it), following links added to the spec from the ids the commands answer, again
with every role's key. The checks:

- no 5xx (``not_a_server_error``);
- responses match the schema where the spec documents one (status code's body schema,
  content type, documented headers);
- every error is ``application/problem+json`` with a matching ``status`` (ours).

Random ids mostly get 404, which is correct; to reach real state, about half of the
cases address an existing ticket, escalation or agent instead of a generated id.

(schemathesis' own pytest integration, ``schemathesis.pytest.from_fixture``, does not
run under pytest 9: it reads ``Function._nodeid``, which pytest 9 removed. So this
module drives schemathesis' per-operation Hypothesis strategies itself.)
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from tests.e2e.proc import Seed, Server, seed, ticket_body

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

INT64_MAX = 2**63 - 1
# Per operation, mode and role: six roles at 6 and the stateful run take about as long as
# 15 examples for four roles did.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "6"))
ROLES = ("admin", "lead", "agent", "requester", "auditor", "unknown")
STATEFUL_SCENARIOS = int(os.environ.get("SCHEMATHESIS_STATEFUL_SCENARIOS", "20"))
STATEFUL_STEPS = 6
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("schemathesis") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(live: Server) -> dict[str, Any]:
    """Keys for each role and ids of real resources to aim generated cases at."""
    people: Seed = seed(live)
    with live.client() as admin:
        ticket = admin.post("/tickets", json=ticket_body(people.queue)).json()["aggregate_id"]
        admin.post(f"/tickets/{ticket}/assign", json={"agent_id": people.agent_id})
        escalation = admin.post(
            f"/tickets/{ticket}/escalations",
            json={"kind": "functional", "target_type": "vendor", "target": "acme", "reason": "x"},
        ).json()["aggregate_id"]
        auditor = admin.post("/api-keys", json={"name": "audrey", "role": "auditor"})
    return {
        "keys": {
            "admin": live.admin_key,
            "lead": people.lead_key,
            "agent": people.agent_key,
            "requester": people.requester_key,
            "auditor": auditor.json()["extra"]["api_key"],
            "unknown": "tk_this-key-was-never-issued-0123456789",
        },
        "ids": {
            "ticket_id": ticket,
            "escalation_id": escalation,
            "agent_id": people.agent_id,
            "type_name": "TicketOpened",
        },
        "queue": people.queue,
        # Every position up to here exists: min_position is kept at or below it.
        "head": httpx.get(f"{live.url}/health").json()["position"],
        "spec": httpx.get(f"{live.url}/openapi.json").json(),
    }


@pytest.fixture(scope="module")
def api_schema(live: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def operations(api_schema: schemathesis.BaseSchema) -> list[Any]:
    """Every operation of the spec (an unreadable one fails here, by name)."""
    found: list[Any] = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    return found


def strategy(
    operation: Any, mode: GenerationMode, world: dict[str, Any], role: str
) -> st.SearchStrategy[Any]:
    """Cases with generated ids, and as many again aimed at resources that exist."""
    headers = {"Authorization": f"Bearer {world['keys'][role]}"}
    generated: st.SearchStrategy[Any] = operation.as_strategy(mode, headers=headers)
    names = [p.name for p in operation.path_parameters]
    if not names or any(name not in world["ids"] for name in names):
        return generated
    real = {name: world["ids"][name] for name in names}
    return st.one_of(generated, operation.as_strategy(mode, headers=headers, path_parameters=real))


def check_case(case: Any, role: str, world: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {world['keys'][role]}"}
    response = case.call(headers=headers, timeout=15)
    case.validate_response(response, checks=CHECKS, headers=headers)
    assert_problem_json(response)


def assert_matches(spec: dict[str, Any], name: str, value: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    errors = [
        f"{list(e.instance_path)}: {e.message[:200]}"
        for e in jsonschema_rs.validator_for(schema, validate_formats=True).iter_errors(value)
    ]
    assert not errors, errors


def assert_problem_json(response: Any) -> None:
    if response.status_code < 400:
        return
    ctype = response.headers.get("content-type", "")
    if isinstance(ctype, list):  # schemathesis' Response keeps every header value
        ctype = ctype[0]
    assert ctype.split(";")[0] == "application/problem+json", (response.status_code, ctype)
    body = response.json()
    assert body["status"] == response.status_code, body
    assert isinstance(body["title"], str) and isinstance(body["detail"], str), body


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_conforms_and_never_fails(
    role: str, world: dict[str, Any], api_schema: schemathesis.BaseSchema
) -> None:
    failures: list[str] = []
    ran = 0
    for operation in operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=strategy(operation, mode, world, role))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
            )
            def run(case: Any) -> None:
                check_case(case, role, world)

            try:
                run()
                ran += 1
            except Unsatisfiable:
                continue  # nothing negative to say about this operation
            except (Exception, FailureGroup) as e:  # collect every operation's failure
                failures.append(f"{operation.label} ({mode.value}) as {role}:\n{e}")
    assert ran > 0
    assert not failures, "\n\n".join(failures)


# What each creating command's answer names, and the path parameter it fills in later
# operations: the stateful run follows these links.
CREATED = {
    ("/tickets", "201"): ("ticket_id", "$response.body#/aggregate_id"),
    ("/tickets/{ticket_id}/escalations", "201"): ("escalation_id", "$response.body#/aggregate_id"),
    ("/agents", "201"): ("agent_id", "$response.body#/aggregate_id"),
    ("/queues", "201"): ("queue", "$request.body#/name"),
}
# schemathesis starts no scenario with POST /tickets (its body names a queue that no
# operation is seen to create): reach it from the commands that do start scenarios.
THEN_OPEN_A_TICKET = [
    ("post", "/queues", "201"),
    ("post", "/agents", "201"),
    ("get", "/queues", "200"),
    ("get", "/tickets", "200"),
]


def with_links(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with OpenAPI links from each creating command to every operation that
    takes the id it made (the spec names no links of its own)."""
    linked = copy.deepcopy(spec)
    for (source, status), (name, value) in CREATED.items():
        links: dict[str, Any] = {}
        for operations_ in linked["paths"].values():
            for operation in operations_.values():
                takes = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
                if name not in takes:
                    continue
                parameters = {f"path.{name}": value}
                if source != "/tickets" and "ticket_id" in takes:
                    parameters["path.ticket_id"] = "$request.path.ticket_id"
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                }
        answer = linked["paths"][source]["post"]["responses"][status]
        answer["links"] = links
    open_ticket = linked["paths"]["/tickets"]["post"]["operationId"]
    for method, source, status in THEN_OPEN_A_TICKET:
        answer = linked["paths"][source][method]["responses"][status]
        answer.setdefault("links", {})[open_ticket] = {"operationId": open_ticket}
    return linked


@pytest.mark.parametrize("role", ROLES)
def test_stateful_sequences_never_fail_and_conform(
    role: str, live: Server, world: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_dict(with_links(world["spec"]))
    schema.config.update(base_url=live.url)
    headers = {"Authorization": f"Bearer {world['keys'][role]}"}
    steps: list[tuple[str, int]] = []
    scenarios = 0

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers, "timeout": 15}

        def validate_response(self, response: Any, case: Any, *args: Any, **kw: Any) -> None:
            steps.append((case.operation.label, response.status_code))
            case.validate_response(response, checks=CHECKS, headers=headers)
            assert_problem_json(response)

        def teardown(self) -> None:
            nonlocal scenarios
            scenarios += 1

    # The server's state changes under the run (a queue's name is taken once), so a
    # replayed choice can find a link's bundle empty: Hypothesis then calls the strategy
    # flaky, and the run goes on afresh, as schemathesis' own runner does. Failures of
    # a check are never retried.
    for _ in range(5):
        try:
            Sequences.run(
                settings=settings(
                    max_examples=max(STATEFUL_SCENARIOS - scenarios, 1),
                    stateful_step_count=STATEFUL_STEPS,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate],
                )
            )
            break
        except FlakyStrategyDefinition:
            if scenarios >= STATEFUL_SCENARIOS:
                break
    assert scenarios >= STATEFUL_SCENARIOS, (scenarios, sorted(Counter(steps).items()))


def test_documented_error_bodies_are_problem_json(live: Server) -> None:
    spec = httpx.get(f"{live.url}/openapi.json").json()
    wrong = [
        f"{method.upper()} {path} {status}: {sorted(answer['content'])}"
        for path, operations_ in spec["paths"].items()
        for method, operation in operations_.items()
        for status, answer in operation["responses"].items()
        if status[0] in "45" and answer.get("content")
        if "application/problem+json" not in answer["content"]
    ]
    assert not wrong, wrong


def test_views_min_position_never_delays_a_401(live: Server, world: dict[str, Any]) -> None:
    t0 = time.monotonic()
    r = httpx.get(
        f"{live.url}/queues",
        params={"min_position": world["head"] + 10**9},
        headers={"Authorization": f"Bearer {world['keys']['unknown']}"},
        timeout=30,
    )
    assert r.status_code == 401, r.text
    assert time.monotonic() - t0 < 1.0


def test_views_min_position_beyond_the_head_is_4xx(live: Server, world: dict[str, Any]) -> None:
    r = httpx.get(
        f"{live.url}/queues",
        params={"min_position": world["head"] + 10**9},
        headers={"Authorization": f"Bearer {world['keys']['admin']}"},
        timeout=30,
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/sla/policy", "/sla/calendars/business-hours"])
def test_sla_version_beyond_int64_is_4xx(live: Server, path: str) -> None:
    r = httpx.get(
        f"{live.url}{path}", params={"version": 2**63}, headers=auth_header(live.admin_key)
    )
    assert 400 <= r.status_code < 500, r.text


def test_sla_durations_match_the_spec(live: Server, world: dict[str, Any]) -> None:
    url = f"{live.url}/tickets/{world['ids']['ticket_id']}"
    deadline = time.monotonic() + 10
    body = httpx.get(url, headers=auth_header(live.admin_key)).json()
    while body.get("sla") is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the SLA clock starts the ticket's clocks on its own
        body = httpx.get(url, headers=auth_header(live.admin_key)).json()
    assert body.get("sla") is not None, "the ticket's SLA clock never started"
    # The latest moment that may be asked about: now (a future as_of is refused).
    late = httpx.get(
        url, params={"as_of": body["sla"]["as_of"]}, headers=auth_header(live.admin_key)
    ).json()
    assert_matches(world["spec"], "TicketDetails", body)
    assert_matches(world["spec"], "TicketDetails", late)


def auth_header(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
