"""The OpenAPI schema and Swagger UI: complete, warning-free, public, and served without a CDN."""

from __future__ import annotations

import re

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

# What the mobile app calls.
APP_PATHS = {
    "/api/v1/payments/mpesa/stk-push",
    "/api/v1/payments/mpesa/stk-push/status/{checkout_request_id}",
    "/api/v1/payments/mpesa/transactions",
    "/api/v1/payments/mpesa/transactions/{id}",
}
# Staff operations (money out, C2B registration, a manual refresh).
STAFF_PATHS = {
    "/api/v1/payments/mpesa/b2c",
    "/api/v1/payments/mpesa/reverse",
    "/api/v1/payments/mpesa/balance",
    "/api/v1/payments/mpesa/register-urls",
    "/api/v1/payments/mpesa/checkout",
    "/api/v1/payments/mpesa/transactions/{id}/refresh",
}
API_PATHS = APP_PATHS | STAFF_PATHS
PUSH = "/api/v1/payments/mpesa/stk-push"
STATUS = "/api/v1/payments/mpesa/stk-push/status/{checkout_request_id}"


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    target = tmp_path_factory.mktemp("openapi") / "schema.yaml"
    # --fail-on-warn raises on any warning or error drf-spectacular emits while generating.
    call_command("spectacular", "--fail-on-warn", "--file", str(target))
    return yaml.safe_load(target.read_text())


def test_schema_generates_without_warnings(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "M-Pesa payments API"


def test_schema_lists_exactly_the_app_and_staff_paths(schema):
    assert APP_PATHS.issubset(schema["paths"])
    assert set(schema["paths"]) == API_PATHS


def test_schema_leaves_out_the_callback_endpoints_daraja_posts_to(schema):
    assert not [path for path in schema["paths"] if "/callbacks/" in path]


def test_stk_push_documents_its_request_body_and_every_answer(schema):
    operation = schema["paths"][PUSH]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StkPushRequest"
    }
    assert set(operation["responses"]) == {
        "201",
        "202",
        "400",
        "401",
        "409",
        "415",
        "422",
        "429",
        "502",
        "503",
    }
    assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}


def test_status_endpoint_documents_200_401_and_404(schema):
    operation = schema["paths"][STATUS]["get"]
    assert set(operation["responses"]) == {"200", "401", "404"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Transaction"
    }


def test_token_auth_is_documented_and_required_by_the_endpoints(schema):
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    for path in API_PATHS:
        for operation in schema["paths"][path].values():
            assert {"tokenAuth": []} in operation["security"]


@pytest.mark.django_db
def test_schema_endpoint_is_public_and_serves_the_same_paths(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert set(yaml.safe_load(response.content)["paths"]) == API_PATHS


@pytest.mark.django_db
def test_swagger_ui_is_public_and_loads_nothing_from_another_host(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html
    assert "https://" not in html
    assert "unpkg" not in html.lower()
    assert "jsdelivr" not in html.lower()

    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    static_url = "/" + settings.STATIC_URL.strip("/") + "/"
    for asset in assets:
        assert asset.startswith(static_url), asset
        assert "cdn" not in asset.lower(), asset
        # Shipped with the app (drf-spectacular-sidecar), so collectstatic can serve it.
        assert finders.find(asset.removeprefix(static_url)), asset
    assert 'url: "/api/schema/"' in html


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
def test_docs_shortcut_redirects_to_swagger_ui(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
