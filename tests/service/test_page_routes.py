"""The page's routes in-process: what ``GET /`` and ``/static/...`` serve, and what they refuse.

The page must work offline, so its files may name no other origin; only the listed assets are
served, never other files of the package.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.routes.page import ASSETS, STATIC_DIR, router


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_index_is_html_with_a_strict_content_security_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<a href="docs">' in response.text
    assert client.head("/").status_code == 200


def test_every_file_the_page_names_is_served_with_its_type(client):
    html = client.get("/").text
    named = re.findall(r'(?:src|href)="(static/[^"]+)"', html)
    assert sorted(named) == sorted(f"static/{name}" for name in ASSETS)
    for path in named:
        response = client.get(f"/{path}")
        assert response.status_code == 200, path
        assert response.headers["content-type"] == ASSETS[path.removeprefix("static/")]
        assert response.content == (STATIC_DIR / path.removeprefix("static/")).read_bytes()


@pytest.mark.parametrize("name", ["index.html", "page.py", "..%2Froutes%2Fpage.py", "nope.js"])
def test_only_listed_assets_are_served(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_page_files_name_no_other_origin():
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", text), f"{path.name} names another origin"
