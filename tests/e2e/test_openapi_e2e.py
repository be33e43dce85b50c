"""The committed OpenAPI document is exactly what the app serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from supportdesk.config import Settings
from supportdesk.main import create_app

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def _served() -> dict[str, object]:
    app = create_app(Settings())
    schema: dict[str, object] = app.openapi()
    return schema


class TestOpenApiDocument:
    def test_committed_document_matches_the_app(self) -> None:
        committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
        assert committed == _served(), "openapi/openapi.json drifted: run `make openapi`"

    def test_paths_keep_their_documented_order(self) -> None:
        # Requests try the busiest routes first (main.ROUTING_ORDER); the document lists
        # the paths in the order it always had.
        committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
        assert list(_served()["paths"]) == list(committed["paths"])  # type: ignore[call-overload]

    async def test_served_over_http_equals_committed(self) -> None:
        transport = httpx.ASGITransport(app=create_app(Settings()))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            served = (await http.get("/openapi.json")).json()
        assert served == json.loads(COMMITTED.read_text(encoding="utf-8"))

    def test_operation_ids_are_stable_names(self) -> None:
        paths = _served()["paths"]
        assert isinstance(paths, dict)
        ids = [op["operationId"] for item in paths.values() for op in item.values()]
        assert len(ids) == len(set(ids))
        assert "customers_create" in ids
        assert all("__" not in i and "api_v1" not in i for i in ids)

    def test_errors_are_documented_as_problem_json(self) -> None:
        operation = _served()["paths"]["/api/v1/customers"]["post"]
        assert "application/problem+json" in operation["responses"]["422"]["content"]


class TestSchemaSaysWhatTheAppDoes:
    """Found by schemathesis (tests/fuzz): the document promised what the app refused."""

    def test_patch_fields_that_cannot_be_null_are_not_nullable(self) -> None:
        schemas = _served()["components"]["schemas"]
        for model, field in [
            ("CustomerUpdate", "name"),
            ("ContractUpdate", "starts_on"),
            ("TicketUpdate", "subject"),
            ("TicketUpdate", "description"),
            ("TicketUpdate", "severity"),
        ]:
            prop = schemas[model]["properties"][field]
            assert "anyOf" not in prop and "default" not in prop, (model, field)
        assert "anyOf" in schemas["CustomerUpdate"]["properties"]["external_ref"]

    def test_lists_filtered_by_customer_document_404(self) -> None:
        paths = _served()["paths"]
        for path in ("/api/v1/tickets", "/api/v1/contracts", "/api/v1/session-logs"):
            assert "404" in paths[path]["get"]["responses"], path

    def test_accept_is_negotiated_not_a_parameter(self) -> None:
        # OpenAPI: a header parameter named Accept "SHALL be ignored".
        operation = _served()["paths"]["/api/v1/customers/{customer_id}/statement"]["get"]
        assert all(p["name"].lower() != "accept" for p in operation["parameters"])
        assert set(operation["responses"]["200"]["content"]) == {
            "application/json",
            "text/csv",
            "application/pdf",
        }

    def test_idempotency_key_says_which_characters(self) -> None:
        operation = _served()["paths"]["/api/v1/customers"]["post"]
        (key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["schema"]["pattern"] == "^[!-~]+$"
