"""Smoke test of the app factory and the Api fixture (the protocol tests live beside it)."""


def test_app_creates_and_reads_a_user(api) -> None:
    user = api.create_user("alice@example.com", name={"givenName": "Alice"})
    got = api.get(f"/Users/{user['id']}")
    assert got.status_code == 200
    assert got.get_json()["name"] == {"givenName": "Alice"}
    assert got.headers["ETag"] == user["meta"]["version"]


def test_app_refuses_missing_token(api) -> None:
    response = api.client.get("/scim/v2/Users")
    api.assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
