-- The sandbox every script and function library runs in. It runs once, first, in a fresh
-- Lua state (script/vm.rs), with the state's real globals, and returns the handles the
-- Rust side keeps; nothing it defines is reachable from user code except through the
-- read-only views it hands out.
--
-- Redis 7 patches its Lua with read-only tables. Stock Lua 5.1 has none, so the same
-- guarantees come from proxies here: every table a script can reach that it must not
-- change (the globals, redis, string, table, math, coroutine, bit, cjson, cmsgpack) is an empty
-- proxy whose metatable reads through to the real table and refuses writes with Redis's
-- words, "Attempt to modify a readonly table". The real tables are upvalues of this chunk
-- only. getmetatable answers an empty read-only table for any of them, and setmetatable,
-- rawset, getfenv and setfenv are wrapped so that none of them reaches behind a proxy.

local raw, mode = ...

local G = _G
local type, error, select, tostring, tonumber = type, error, select, tostring, tonumber
local rawset, next, pcall, xpcall = rawset, next, pcall, xpcall
local setmetatable, getmetatable = setmetatable, getmetatable
local getfenv, setfenv, loadstring = getfenv, setfenv, loadstring
local concat = table.concat

local RO = 'Attempt to modify a readonly table'

-- proxy -> the table it shows (weak: a proxy nobody holds may go).
local backing = setmetatable({}, { __mode = 'k' })

local function readonly()
    error(RO, 2)
end

-- What getmetatable answers for a protected table or a string.
local hidden = {}
setmetatable(hidden, { __newindex = readonly, __metatable = hidden })
backing[hidden] = {}

local function missing(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 0)
end

-- A read-only view of t. A field t lacks reads as nil, or with `strict` raises the error
-- Redis raises for an undeclared global.
local function protect(t, strict)
    local index = t
    if strict then
        index = function(_, k)
            local v = t[k]
            if v == nil then
                missing(nil, k)
            end
            return v
        end
    end
    local proxy = setmetatable({}, { __index = index, __newindex = readonly, __metatable = hidden })
    backing[proxy] = t
    return proxy
end

-- The globals scripts see: a proxy over G. Its metatable is kept aside so that a function
-- library's top level can see the registration API instead of G (FUNCTION LOAD).
local env_meta = { __index = G, __newindex = readonly, __metatable = hidden }
local env = setmetatable({}, env_meta)
backing[env] = G
setmetatable(G, { __index = missing })

-- Lua's own functions a script may not have (Redis removes them too); require, module,
-- os, io and debug are never loaded.
G.print, G.dofile, G.loadfile = nil, nil, nil

-- Source only: a crafted binary chunk can break out of the VM (Redis refuses them too).
local function load_text(s, name)
    if type(s) == 'string' and s:byte(1) == 27 then
        return nil, 'binary chunks are not allowed'
    end
    local f, e = loadstring(s, name)
    if f then
        setfenv(f, env)
    end
    return f, e
end
G.loadstring = load_text
G.load = function(f, name)
    if type(f) ~= 'function' then
        return load_text(f, name)
    end
    local parts = {}
    while true do
        local p = f()
        if p == nil or p == '' then
            break
        end
        parts[#parts + 1] = p
    end
    return load_text(concat(parts), name)
end

-- Redis 7's pcall: an error raised as a table (redis.call's) comes back as its message.
local errstr = raw.errstr
local function settle(ok, ...)
    if ok then
        return true, ...
    end
    local e = ...
    if type(e) == 'table' then
        local m = e.err
        if type(m) == 'string' or type(m) == 'number' then
            e = m
        end
    elseif type(e) == 'userdata' then
        e = errstr(e)
    end
    return false, e
end
G.pcall = function(f, ...)
    return settle(pcall(f, ...))
end

G.setmetatable = function(t, mt)
    if backing[t] then
        error(RO, 2)
    end
    return setmetatable(t, mt)
end
G.rawset = function(t, k, v)
    if backing[t] then
        error(RO, 2)
    end
    return rawset(t, k, v)
end
G.getfenv = function(f)
    local e
    if f == nil then
        e = getfenv(2)
    elseif type(f) == 'number' and f > 0 then
        e = getfenv(f + 1)
    else
        e = getfenv(f)
    end
    if e == G then
        return env
    end
    return e
end
G.setfenv = function(f, t)
    if f == 0 then
        error(RO, 2)
    end
    if type(f) == 'number' then
        f = f + 1
    end
    return setfenv(f, t)
end
-- pairs sees through a proxy without handing out the table behind it.
local base_pairs = pairs
G.pairs = function(t)
    local b = backing[t]
    if b == nil then
        return base_pairs(t)
    end
    local k
    return function()
        local v
        k, v = next(b, k)
        return k, v
    end
end

-- redis.* -----------------------------------------------------------------------------------

-- An error as redis.pcall returns it: "-CODE msg" keeps its code, anything else gets ERR.
local function error_table(s)
    local code, msg = 'ERR', s
    if s:sub(1, 1) == '-' then
        local sp = s:find(' ', 1, true)
        if sp then
            code, msg = s:sub(2, sp - 1), s:sub(sp + 1)
        else
            msg = s:sub(2)
        end
    end
    msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
    return { err = code .. ' ' .. msg }
end

local function fail(msg)
    error({ err = 'ERR ' .. msg })
end

-- redis.call and redis.pcall are Rust functions the Rust side sets for the length of each
-- run (they reach the shard's store); between runs they refuse.
local redis = {}
redis.call, redis.pcall = raw.outside, raw.outside
redis.sha1hex = function(...)
    if select('#', ...) ~= 1 then
        fail('wrong number of arguments')
    end
    return raw.sha1hex((...))
end
redis.error_reply = function(...)
    local s = ...
    if select('#', ...) ~= 1 or type(s) ~= 'string' then
        return error_table('wrong number or type of arguments')
    end
    if s:sub(1, 1) ~= '-' then
        s = '-' .. s
    end
    return error_table(s)
end
redis.status_reply = function(...)
    local s = ...
    if select('#', ...) ~= 1 or type(s) ~= 'string' then
        return error_table('wrong number or type of arguments')
    end
    return { ok = s }
end

local function log(...)
    local n = select('#', ...)
    if n < 2 then
        fail('redis.log() requires two arguments or more.')
    end
    local level = tonumber((...))
    if level == nil then
        fail('First argument must be a number (log level).')
    end
    if level < 0 or level > 3 then
        fail('Invalid debug level.')
    end
    local parts = {}
    for i = 2, n do
        local v = select(i, ...)
        local t = type(v)
        if t == 'string' or t == 'number' then
            parts[#parts + 1] = tostring(v)
        end
    end
    raw.log(level, concat(parts, ' '))
end

local function add_log(t)
    t.log = log
    t.LOG_DEBUG, t.LOG_VERBOSE, t.LOG_NOTICE, t.LOG_WARNING = 0, 1, 2, 3
    t.REDIS_VERSION, t.REDIS_VERSION_NUM = raw.version, raw.version_num
end
add_log(redis)

redis.setresp = function(...)
    if select('#', ...) ~= 1 then
        fail('redis.setresp() requires one argument.')
    end
    local v = tonumber((...))
    if v ~= 2 and v ~= 3 then
        fail('RESP version must be 2 or 3.')
    end
    raw.setresp(v)
end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
-- pinion does not replicate: the flags are checked and have no effect.
redis.set_repl = function(...)
    if select('#', ...) ~= 1 then
        fail('redis.set_repl() requires two arguments.')
    end
    local v = tonumber((...)) or 0
    if v < 0 or v > 3 or v % 1 ~= 0 then
        fail('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
    end
end
redis.acl_check_cmd = function(...)
    if select('#', ...) == 0 then
        fail('Please specify at least one argument for this redis lib call')
    end
    if not raw.known_command((...)) then
        fail('Invalid command passed to redis.acl_check_cmd()')
    end
    return raw.acl_allows(...)
end
if mode == 'eval' then
    -- The debugger is not served; effects replication is the only mode.
    redis.breakpoint = function()
        return false
    end
    redis.debug = function() end
    redis.replicate_commands = function()
        return true
    end
end

-- Libraries ---------------------------------------------------------------------------------

local cjson = {}
for k, v in next, raw.cjson do
    cjson[k] = v
end
local encode, decode = cjson.encode, cjson.decode
cjson.encode = function(...)
    local s, e = encode(...)
    if s == nil then
        error(e, 0)
    end
    return s
end
cjson.decode = function(...)
    local ok, v = decode(...)
    if not ok then
        error(v, 0)
    end
    return v
end

G.redis = protect(redis)
G.bit = protect(raw.bit)
G.cjson = protect(cjson)
G.cmsgpack = protect(raw.cmsgpack)
G.string = protect(string)
G.table = protect(table)
G.math = protect(math)
G.coroutine = protect(coroutine)
getmetatable('').__metatable = hidden
G._G = env

-- What a function library's top level sees instead of the globals: registration only.
local load_env = nil
if mode == 'function' then
    local lib = {}
    add_log(lib)
    local register = raw.register_function
    lib.register_function = function(...)
        local e = register(...)
        if e ~= nil then
            fail(e)
        end
    end
    load_env = protect({ redis = protect(lib, true) }, true)
end

-- Runs a function library's registered function with its two tables.
local function run(f, handler, keys, args)
    return xpcall(function()
        return f(keys, args)
    end, handler)
end

return {
    env = env,
    env_meta = env_meta,
    globals = G,
    load_env = load_env,
    api = redis,
    xpcall = xpcall,
    run = run,
}
