"""Real Mastodon clients from PyPI (Mastodon.py 2.3.3, toot 0.52.1) against a real `fedserver run` over loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import requests
from mastodon import Mastodon
from mastodon.errors import MastodonIllegalArgumentError, MastodonUnauthorizedError

from tests.api.forms import hidden_fields, shown_code
from tests.support.instance import Instance, free_port, instance_env

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
TOOT = str(Path(sys.executable).parent / "toot")


def _set_email(db_url: str, username: str, email: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(
                "UPDATE local_accounts SET email = $2 WHERE actor_id = (SELECT id FROM actors WHERE username = $1)",
                username, email)
        finally:
            await conn.close()
    asyncio.run(run())


def _start(db_url: str, tmp_path: Path, extra: dict | None = None) -> Instance:
    port = free_port()
    env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=port, extra=extra)
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    for name in ("alice", "bob"):
        created = inst.command("account", "create", name, "--display-name", f"{name} 공방", "--password-stdin",
                               stdin=PASSWORD + "\n")
        assert created.returncode == 0, created.stderr
    _set_email(db_url, "alice", "alice@example.com")
    inst.start()
    return inst


@pytest.fixture(scope="module")
def server(pg_cluster, tmp_path_factory) -> Instance:
    """One server for the module: each test logs in afresh (its own app and token), and the one that changes a
    profile and revokes its token does so on an account of its own, so alice and bob stay as `_start` made them."""
    db_url = asyncio.run(pg_cluster.create_database())
    inst = _start(db_url, tmp_path_factory.mktemp("clients"))
    yield inst
    inst.kill()
    asyncio.run(pg_cluster.drop_database(db_url))


def _approve_in_browser(authorize_url: str, username: str = "alice") -> requests.Response:
    """What a person does on the login page: GET it, fill in the form, submit (no JavaScript)."""
    session = requests.Session()
    page = session.get(authorize_url, timeout=30)
    assert page.status_code == 200, page.text
    form = {**hidden_fields(page.text), "username": username, "password": PASSWORD, "decision": "allow"}
    action = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}/oauth/authorize"
    return session.post(action, data=form, allow_redirects=False, timeout=30)


def test_mastodon_py_logs_in_with_the_authorization_code_flow(server, tmp_path):
    client_file, user_file = tmp_path / "clientcred.secret", tmp_path / "usercred.secret"
    Mastodon.create_app("itest", api_base_url=server.base_url, to_file=str(client_file))
    app = Mastodon(client_id=str(client_file))
    url = app.auth_request_url(allow_http=True)  # out-of-band: the page shows the code
    assert url.startswith(f"{server.base_url}/oauth/authorize?")
    code = shown_code(_approve_in_browser(url).text)
    assert code
    app.log_in(code=code, allow_http=True, to_file=str(user_file))

    api = Mastodon(access_token=str(user_file))
    me = api.account_verify_credentials()
    assert (me.username, me.acct, me.display_name) == ("alice", "alice", "alice 공방")
    assert me.source.privacy == "public"
    assert api.retrieve_mastodon_version() == "4.3.0" and api.mastodon_api_version == 2
    instance = api.instance()  # >= 4.0.0: the v2 document
    assert instance.domain == f"127.0.0.1:{server.port}" and instance.api_versions.mastodon == 2


def test_mastodon_py_redirect_flow_with_a_custom_scheme_and_state(server, tmp_path):
    client_id, secret = Mastodon.create_app("redirecting", api_base_url=server.base_url,
                                            redirect_uris=["myapp://callback"])
    app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=server.base_url)
    url = app.auth_request_url(redirect_uris="myapp://callback", state="opaque-123", allow_http=True)
    response = _approve_in_browser(url)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == "myapp://callback"
    query = parse_qs(location.query)
    assert query["state"] == ["opaque-123"]
    token = app.log_in(code=query["code"][0], redirect_uri="myapp://callback", allow_http=True)
    assert Mastodon(access_token=token, api_base_url=server.base_url).me().username == "alice"


def test_mastodon_py_password_grant_and_the_account_endpoints(server, tmp_path):
    # dana, not alice: this test changes the profile and revokes the token, and the server is the module's.
    created = server.command("account", "create", "dana", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    _set_email(server.env["FEDSERVER_DATABASE__URL"], "dana", "dana@example.com")
    client_id, secret = Mastodon.create_app("pw", api_base_url=server.base_url)
    app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=server.base_url)
    token = app.log_in("dana@example.com", PASSWORD, allow_http=True)  # the email, as Mastodon.py documents
    api = Mastodon(access_token=token, api_base_url=server.base_url)
    me = api.account_verify_credentials()
    assert me.username == "dana"

    updated = api.account_update_credentials(display_name="다나", note="물레 & 가마", locked=True,
                                             default_privacy="unlisted")
    assert updated.display_name == "다나" and updated.locked is True
    assert updated.note == "<p>물레 &amp; 가마</p>" and updated.source.privacy == "unlisted"
    assert api.preferences()["posting:default:visibility"] == "unlisted"

    bob = api.account_lookup("bob")
    assert bob.acct == "bob" and api.account(bob.id).username == "bob"
    [relation] = api.account_relationships(bob.id)
    assert relation.following is False and str(relation.id) == str(bob.id)

    api.markers_set(["home"], [12345])
    assert str(api.markers_get(["home"])["home"].last_read_id) == "12345"
    assert api.lists() == [] and api.filters() == [] and api.announcements() == []
    assert api.custom_emojis() == []

    app.revoke_access_token(allow_http=True)  # the logged-in app object holds the client secret
    with pytest.raises(MastodonUnauthorizedError):
        api.account_verify_credentials()


def _toot(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {"XDG_CONFIG_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home), **(env or {})}
    return subprocess.run([TOOT, *args], env=environ, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def test_toot_login_cli_then_whoami(server, tmp_path):
    home = tmp_path / "toot"
    login = _toot("login_cli", "--instance", server.base_url, "--email", "alice@example.com",
                  "--password", PASSWORD, home=home)
    assert login.returncode == 0, login.stdout + login.stderr
    assert "Successfully logged in" in login.stdout
    config = json.loads((home / "toot" / "config.json").read_text())
    assert config["active_user"] == f"alice@127.0.0.1:{server.port}"

    whoami = _toot("whoami", home=home)
    assert whoami.returncode == 0, whoami.stderr
    assert "@alice" in whoami.stdout and "alice 공방" in whoami.stdout

    as_json = _toot("whoami", "--json", home=home)
    assert json.loads(as_json.stdout)["acct"] == "alice"


def test_toot_login_cli_env_var_form_with_the_account_name(server, tmp_path):
    home = tmp_path / "toot"
    login = _toot("login_cli", home=home, env={
        "TOOT_LOGIN_CLI_BASE_URL": server.base_url, "TOOT_LOGIN_CLI_EMAIL": "bob",
        "TOOT_LOGIN_CLI_PASSWORD": PASSWORD})
    assert login.returncode == 0, login.stdout + login.stderr
    whoami = _toot("--as", f"bob@127.0.0.1:{server.port}", "whoami", home=home)
    assert whoami.returncode == 0 and "@bob" in whoami.stdout, whoami.stdout + whoami.stderr


def test_with_the_password_grant_off_both_clients_fail_clearly(db_url, tmp_path):
    inst = _start(db_url, tmp_path, extra={"FEDSERVER_API__PASSWORD_GRANT": "false"})
    try:
        client_id, secret = Mastodon.create_app("pw", api_base_url=inst.base_url)
        app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=inst.base_url)
        with pytest.raises(MastodonIllegalArgumentError, match="Password flow is not supported"):
            app.log_in("alice", PASSWORD, allow_http=True)
        login = _toot("login_cli", "--instance", inst.base_url, "--email", "alice", "--password", PASSWORD,
                      home=tmp_path / "toot")
        assert login.returncode != 0 and "Login failed" in login.stderr
        # The code flow still works.
        code = shown_code(_approve_in_browser(app.auth_request_url(allow_http=True)).text)
        assert app.log_in(code=code, allow_http=True)
    finally:
        inst.kill()
