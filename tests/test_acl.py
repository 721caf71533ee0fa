"""Users and ACLs over RESP (issue 13, item 8): a users file with salted SCRAM credentials,
AUTH user pass, HELLO 3 AUTH, ACL SETUSER/GETUSER/DELUSER/LIST/USERS/WHOAMI/CAT/LOG/SAVE/LOAD,
command categories and key patterns, with redis-py and redis-cli, and the admin endpoint's
bearer token (item 9)."""
import subprocess
import urllib.error
import urllib.request

import pytest
import redis

from conftest import binary


def add_user(path, name, password, *rules):
    """`pinion users add`: the password from stdin, rules as arguments."""
    r = subprocess.run(
        [binary(), "users", "add", name, *rules, "--password-stdin", "--file", str(path)],
        input=password.encode(), capture_output=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users.acl"
    add_user(path, "alice", "alice-pw", "+@read", "+@connection", "+acl|whoami", "~app:*")
    add_user(path, "admin", "admin-pw", "+@all", "allkeys")
    return path


def client(node, user=None, password=None, **kw):
    return redis.Redis(host="127.0.0.1", port=node.port, username=user, password=password,
                       socket_timeout=10, **kw)


def test_users_file_keeps_no_password(users_file):
    text = users_file.read_text()
    assert "alice-pw" not in text and "admin-pw" not in text
    assert "user alice on scram$4096$" in text


def test_auth_with_users_and_the_acl_rules(start, users_file):
    node = start("--users", str(users_file), "--requirepass", "default-pw")
    # Not authenticated: refused.
    with pytest.raises(redis.AuthenticationError):
        client(node).get("x")
    # Wrong password, right password.
    with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        client(node, "alice", "nope").ping()
    admin = client(node, "admin", "admin-pw")
    admin.set("app:1", "v1")
    admin.set("secret", "s")
    alice = client(node, "alice", "alice-pw")
    assert alice.acl_whoami() == "alice"
    assert alice.get("app:1") == b"v1"
    # A command outside her categories, and a key outside her patterns.
    with pytest.raises(redis.exceptions.NoPermissionError,
                       match="no permissions to run the 'set' command"):
        alice.set("app:1", "x")
    with pytest.raises(redis.exceptions.NoPermissionError,
                       match="no permissions to access one of the keys"):
        alice.get("secret")
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.mget("app:1", "secret")
    # requirepass is the default user's password.
    assert client(node, password="default-pw").ping()
    with pytest.raises(redis.AuthenticationError):
        client(node, password="wrong").ping()
    # HELLO 3 AUTH, through redis-cli.
    out = node.cli("HELLO", "3", "AUTH", "alice", "alice-pw")
    assert "proto" in out and "3" in out
    out = node.cli("HELLO", "3", "AUTH", "alice", "bad", check=False)
    assert "WRONGPASS" in out
    # ACL LOG: the denied command, key and AUTH, newest first.
    log = admin.acl_log()
    reasons = {(e["reason"], e["object"], e["username"]) for e in log}
    assert ("command", "set", "alice") in reasons
    assert ("key", "secret", "alice") in reasons
    # The object is the command that authenticated (redis-py 8 authenticates with HELLO).
    assert {("auth", "HELLO", "alice"), ("auth", "AUTH", "alice")} & reasons
    assert not any(r == "command" and o != "set" for r, o, _ in reasons), reasons
    assert all(e["context"] == "toplevel" for e in log)
    assert admin.acl_log_reset()
    assert admin.acl_log() == []


def test_setuser_applies_to_open_connections_and_multi(start, users_file):
    node = start("--users", str(users_file))
    admin = client(node, "admin", "admin-pw")
    assert admin.acl_setuser("bob", enabled=True, passwords=["+bob-pw"],
                             commands=["+@all", "-@dangerous"], keys=["b:*"])
    bob = client(node, "bob", "bob-pw")
    bob.set("b:1", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        bob.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        bob.set("a:1", "1")
    u = admin.acl_getuser("bob")
    assert "on" in u["flags"] and "b:*" in str(u["keys"])
    assert not any("bob-pw" in p for p in u["passwords"])
    assert "bob" in admin.acl_users()
    assert any(line.startswith("user bob on scram$") for line in admin.acl_list())
    # A change on one connection applies to bob's open connection at its next command.
    admin.execute_command("ACL", "SETUSER", "bob", "-set")
    with pytest.raises(redis.exceptions.NoPermissionError, match="'set' command"):
        bob.set("b:1", "2")
    # Denied at queue time: EXEC aborts.
    p = bob.pipeline(transaction=True)
    p.get("b:1")
    p.set("b:1", "3")
    with pytest.raises((redis.exceptions.ExecAbortError, redis.exceptions.NoPermissionError)):
        p.execute()
    # Rules changed between queueing and EXEC: that command's element is NOPERM.
    raw = client(node, "bob", "bob-pw")
    conn = raw.connection_pool.get_connection()
    conn.send_command("MULTI")
    assert conn.read_response() == b"OK"
    conn.send_command("GET", "b:1")
    assert conn.read_response() == b"QUEUED"
    admin.execute_command("ACL", "SETUSER", "bob", "-get")
    conn.send_command("EXEC")
    res = conn.read_response()
    assert isinstance(res[0], redis.exceptions.NoPermissionError), res
    assert "ACLs rules changed between the moment the transaction was accumulated" in str(res[0])
    # EVAL's keys are checked too.
    admin.execute_command("ACL", "SETUSER", "bob", "+@all", "-@dangerous")
    with pytest.raises(redis.exceptions.NoPermissionError, match="keys"):
        bob.eval("return 1", 1, "other")
    assert bob.eval("return 1", 1, "b:x") == 1
    # Bad rules answer Redis's texts and change nothing.
    with pytest.raises(redis.ResponseError, match="Unknown command or category name in ACL"):
        admin.execute_command("ACL", "SETUSER", "bob", "+nosuchcommand")
    with pytest.raises(redis.ResponseError, match="Syntax error"):
        admin.execute_command("ACL", "SETUSER", "bob", "bogus")
    with pytest.raises(redis.ResponseError, match="'default' user cannot be removed"):
        admin.acl_deluser("default")
    # Deleting bob closes his connections.
    assert admin.acl_deluser("bob") == 1
    with pytest.raises((redis.ConnectionError, redis.AuthenticationError)):
        bob.get("b:1")
    cats = admin.acl_cat()
    assert {"read", "write", "dangerous", "keyspace", "scripting"} <= set(cats)
    assert "get" in admin.acl_cat("read") and "set" not in admin.acl_cat("read")
    assert "flushall" in admin.acl_cat("dangerous")


def test_acl_save_load_and_restart(start, users_file):
    node = start("--users", str(users_file))
    admin = client(node, "admin", "admin-pw")
    admin.execute_command("ACL", "SETUSER", "carol", "on", ">carol-pw", "+get", "~c:*")
    assert admin.acl_save()
    text = users_file.read_text()
    assert "user carol on scram$" in text and "carol-pw" not in text
    # LOAD replaces what is in memory with the file.
    admin.execute_command("ACL", "SETUSER", "dave", "on", ">d")
    assert admin.acl_load()
    assert "dave" not in admin.acl_users()
    assert client(node, "carol", "carol-pw").get("c:1") is None
    # A restart keeps the users.
    node.stop()
    node.restart()
    carol = client(node, "carol", "carol-pw")
    assert carol.get("c:1") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        carol.set("c:1", "x")
    with pytest.raises(redis.AuthenticationError):
        client(node, "carol", "wrong").ping()


def test_acl_without_users_file(start):
    node = start()
    r = node.client()
    assert r.acl_whoami() == "default"
    with pytest.raises(redis.ResponseError, match="not configured to use an ACL file"):
        r.acl_save()
    # The default user may be given a password at run time; new connections need it.
    r.execute_command("ACL", "SETUSER", "default", "resetpass", ">newpw")
    with pytest.raises(redis.AuthenticationError):
        node.client().get("x")
    assert client(node, "default", "newpw").ping()


def fetch(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_admin_token(start, tmp_path):
    token_file = tmp_path / "admin.token"
    token_file.write_text("t0ken\n")
    node = start("--admin-token", f"@{token_file}")
    base = f"http://127.0.0.1:{node.admin_port}"
    assert fetch(f"{base}/metrics")[0] == 200
    assert fetch(f"{base}/histograms")[0] == 401
    assert fetch(f"{base}/histograms", "wrong")[0] == 401
    status, body = fetch(f"{base}/histograms", "t0ken")
    assert status == 200 and body
    assert fetch(f"{base}/", "t0ken")[0] == 200
