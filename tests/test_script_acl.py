"""Scripts and ACLs (issue 13): `redis.call` and `redis.pcall` inside EVAL, EVALSHA and FCALL
check the calling user's commands and key patterns, as Redis 7.0's scriptVerifyACL does, with
its words ("ERR The user executing the script ..."), an ACL LOG entry in context `lua`, and
`redis.acl_check_cmd` answering for that user. Scripts run on their keys' shard, forwarded,
inside MULTI and over keys of both shards (gathered): each path is tried."""
import pytest
import redis

from conftest import Raw, keys_on

# Redis 7.0's words. redis-py drops an error's "ERR " code from what it raises; the wire text
# is checked with a raw connection below.
CMD_DENIED = "The user executing the script can't run this command or subcommand"
KEY_DENIED = ("The user executing the script can't access at least one of the keys "
              "mentioned in the command arguments")


@pytest.fixture
def pair(node):
    """(admin, bob): the default user (unrestricted) and bob, who may run scripts, GET and
    SET, on keys x*."""
    admin = node.client()
    admin.execute_command("ACL", "SETUSER", "bob", "on", ">bob-pw", "+@scripting", "+get",
                          "+set", "+multi", "+exec", "~x*")
    bob = redis.Redis(host="127.0.0.1", port=node.port, username="bob", password="bob-pw",
                      socket_timeout=10)
    yield admin, bob
    admin.close()
    bob.close()


@pytest.mark.parametrize("shard", [0, 1])
def test_call_refuses_a_command_the_user_lacks(pair, shard):
    admin, bob = pair
    (k,) = keys_on(shard, 1, prefix="x")
    admin.set(k, "kept")
    with pytest.raises(redis.ResponseError) as e:
        bob.eval("return redis.call('del', KEYS[1])", 1, k)
    assert str(e.value).startswith(CMD_DENIED + " script: ")
    assert str(e.value).endswith("on @user_script:1.")
    assert admin.get(k) == b"kept"
    # What the user may do still runs.
    assert bob.eval("return redis.call('set', KEYS[1], 'v')", 1, k) == b"OK"
    assert admin.get(k) == b"v"


def test_call_refuses_a_key_outside_the_users_patterns(node, pair):
    admin, bob = pair
    with pytest.raises(redis.ResponseError) as e:
        bob.eval("return redis.call('set', 'secret', 'v')", 0)
    assert str(e.value).startswith(KEY_DENIED + " script: ")
    assert admin.get("secret") is None
    # On the wire, with its error code, as Redis 7.0.15 answers.
    raw = Raw(node.port)
    assert raw.cmd("AUTH", "bob", "bob-pw") == b"+OK\r\n"
    reply = raw.cmd("EVAL", "return redis.call('set', 'secret', 'v')", "0")
    assert reply.startswith(b"-ERR " + KEY_DENIED.encode() + b" script: ")
    raw.close()


def test_pcall_returns_the_refusal_as_an_error_table(pair):
    admin, bob = pair
    (k,) = keys_on(0, 1, prefix="x")
    admin.set(k, "kept")
    script = """
        local r = redis.pcall('del', KEYS[1])
        local s = redis.pcall('get', 'secret')
        return {type(r), r['err'], s['err'], redis.call('get', KEYS[1])}
    """
    assert bob.eval(script, 1, k) == [b"table", b"ERR " + CMD_DENIED.encode(),
                                      b"ERR " + KEY_DENIED.encode(), b"kept"]


def test_evalsha_and_fcall_check_the_caller(pair):
    admin, bob = pair
    (k,) = keys_on(1, 1, prefix="x")
    admin.set(k, "kept")
    sha = admin.script_load("return redis.call('del', KEYS[1])")
    # The unrestricted user runs the same script.
    (other,) = keys_on(1, 1, prefix="xo")
    admin.set(other, "1")
    assert admin.evalsha(sha, 1, other) == 1
    with pytest.raises(redis.ResponseError, match=CMD_DENIED):
        bob.evalsha(sha, 1, k)
    lib = "#!lua name=acllib\nredis.register_function('wipe', function(keys) return redis.call('del', keys[1]) end)"
    admin.function_load(lib)
    with pytest.raises(redis.ResponseError, match=CMD_DENIED):
        bob.fcall("wipe", 1, k)
    assert admin.get(k) == b"kept"


def test_inside_multi_and_over_both_shards(pair):
    admin, bob = pair
    (a,) = keys_on(0, 1, prefix="x")
    (b,) = keys_on(1, 1, prefix="x")
    admin.mset({a: "1", b: "2"})
    p = bob.pipeline(transaction=True)
    p.eval("return redis.call('del', KEYS[1])", 1, a)
    p.get(a)
    got = p.execute(raise_on_error=False)
    assert isinstance(got[0], redis.ResponseError) and CMD_DENIED in str(got[0])
    assert got[1] == b"1"
    # Keys of both shards: the script runs on gathered copies of them.
    with pytest.raises(redis.ResponseError, match=CMD_DENIED):
        bob.eval("redis.call('set', KEYS[1], 'a') return redis.call('del', KEYS[2])", 2, a, b)
    assert admin.mget(a, b) == [b"a", b"2"]


def test_acl_log_and_acl_check_cmd(pair):
    admin, bob = pair
    admin.acl_log_reset()
    with pytest.raises(redis.ResponseError):
        bob.eval("return redis.call('incr', 'x1')", 0)
    entry = admin.acl_log(1)[0]
    assert entry["context"] == "lua"
    assert entry["reason"] == "command"
    assert entry["object"] == "incr"
    assert entry["username"] == "bob"
    assert entry["client-info"]["user"] == "bob"
    checks = """
        local function b(x) if x then return 1 else return 0 end end
        return {b(redis.acl_check_cmd('set', 'x1', 1)), b(redis.acl_check_cmd('set', 'y', 1)),
                b(redis.acl_check_cmd('del', 'x1')), b(redis.acl_check_cmd('set'))}
    """
    assert bob.eval(checks, 0) == [1, 0, 0, 1]
    assert admin.eval(checks, 0) == [1, 1, 1, 1]
