-- Runs once when the scripting VM is created, with every standard function still reachable.
-- It builds the `redis`/`server` library around the host functions rockslot passes in, then
-- seals the global table as Valkey does: reading a missing global and writing any global are
-- errors, and the library tables are read-only. Returns the VM's entry points (`vm` below).
local host = ...
local G = {}
for k, v in pairs(_G) do
  G[k] = v
end
local rawset_, setmetatable_, error_, type_, tostring_ = rawset, setmetatable, error, type, tostring
local pairs_, ipairs_, select_ = pairs, ipairs, select

-- Read-only proxies and the tables behind them (pairs/next/ipairs see through them).
local behind = setmetatable_({}, { __mode = 'k' })
local function readonly(t)
  local proxy = {}
  setmetatable_(proxy, {
    __index = t,
    __newindex = function()
      error_("Attempt to modify a readonly table", 2)
    end,
    __metatable = false,
  })
  behind[proxy] = t
  return proxy
end
local next_ = next
local function real(t)
  return behind[t] or t
end

-- call, pcall, log, setresp and acl_check_cmd are bound by rockslot for each run (C functions, so the
-- script's own line is on the stack when they raise).
local redis = {}
redis.error_reply = function(...)
  if select_('#', ...) ~= 1 or type_((...)) ~= 'string' then
    return { err = 'ERR wrong number or type of arguments' }
  end
  return { err = host.error_text((...)) }
end
redis.status_reply = function(...)
  if select_('#', ...) ~= 1 or type_((...)) ~= 'string' then
    return { err = 'ERR wrong number or type of arguments' }
  end
  return { ok = (...) }
end
redis.sha1hex = host.sha1hex
redis.set_repl = function() end
redis.breakpoint = function() return false end
redis.debug = function() end

redis.replicate_commands = function() return true end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = '7.2.4', 0x070204
redis.VALKEY_VERSION, redis.VALKEY_VERSION_NUM = '8.1.8', 0x080108
redis.SERVER_NAME = 'valkey'
local lib = readonly(redis)
G.redis, G.server = lib, lib

local os_ = { clock = os.clock }
G.os = readonly(os_)
for _, name in ipairs_({ 'string', 'table', 'math', 'coroutine' }) do
  G[name] = readonly(G[name])
end
G.bit = readonly(host.bit)
G.cjson = readonly(host.cjson)
G.cmsgpack = readonly(host.cmsgpack)
G.struct = readonly(host.struct)
for _, name in ipairs_({ 'print', 'dofile', 'loadfile', 'setfenv', 'getfenv', 'newproxy', 'module',
  'require', 'package', 'debug', 'io' }) do
  G[name] = nil
end
-- A script's pcall gets an error's text, as Valkey's does: a failed redis.call's error line,
-- an error table's `err`.
local pcall_ = pcall
local function fix(ok, ...)
  if ok then
    return ok, ...
  end
  local killed = host.killed()
  if killed then
    error_(killed, 0)
  end
  return ok, host.fix_error((...))
end
G.pcall = function(...)
  return fix(pcall_(...))
end
-- A killed script stays killed: an error caught by the script's own (x)pcall is raised again.
local xpcall_ = xpcall
local function still_killed(ok, ...)
  local killed = not ok and host.killed()
  if killed then
    error_(killed, 0)
  end
  return ok, ...
end
G.xpcall = function(f, h)
  return still_killed(xpcall_(f, h))
end
G.next = function(t, k)
  return next_(real(t), k)
end
-- Iterators over a proxy keep the table behind it in a closure: a script never holds it.
G.pairs = function(t)
  local r = real(t)
  if r == t then
    return pairs_(t)
  end
  return function(_, k)
    return next_(r, k)
  end, t, nil
end
G.ipairs = function(t)
  local r = real(t)
  if r == t then
    return ipairs_(t)
  end
  return function(_, i)
    i = i + 1
    local v = r[i]
    if v ~= nil then
      return i, v
    end
  end, t, 0
end
-- rawset is a host (C) function: it refuses the read-only tables (listed in `behind`, which
-- rockslot keeps in its registry) and, being C, keeps the caller's line on the stack.
G.rawset = host.rawset
-- Strings find their methods through the read-only string library, and their metatable is
-- read-only too (otherwise getmetatable('').__index would hand out the shared table).
local string_mt = getmetatable('')
string_mt.__index = G.string
string_mt.__metatable = readonly(string_mt)

-- While a function library loads, the globals are only `server`/`redis` with the loading API
-- (register_function and log, bound by rockslot for the load), as in Valkey; anything else
-- is a missing global, even a field of `server`.
local load_api = {}
load_api.LOG_DEBUG, load_api.LOG_VERBOSE, load_api.LOG_NOTICE, load_api.LOG_WARNING = 0, 1, 2, 3
for _, k in ipairs_({ 'REDIS_VERSION', 'REDIS_VERSION_NUM', 'VALKEY_VERSION', 'VALKEY_VERSION_NUM',
  'SERVER_NAME' }) do
  load_api[k] = redis[k]
end
-- An __index that finds names through `lookup` and makes a missing one an error at the
-- script's line; an __newindex that refuses every write.
local function guarded(lookup)
  return function(_, k)
    local v = lookup(k)
    if v == nil then
      error_("Script attempted to access nonexistent global variable '" .. tostring_(k) .. "'", 2)
    end
    return v
  end
end
local function refuse()
  error_("Attempt to modify a readonly table", 2)
end
local load_lib = setmetatable_({}, {
  __index = guarded(function(k)
    return load_api[k]
  end),
  __newindex = refuse,
  __metatable = false,
})
local LOADING = { server = load_lib, redis = load_lib }
local current = G

local sealed = _G
for k in pairs_(G) do
  rawset_(sealed, k, nil)
end
for k in pairs_(sealed) do
  rawset_(sealed, k, nil)
end
G._G = sealed
behind[sealed] = G
setmetatable_(sealed, {
  __index = guarded(function(k)
    return current[k]
  end),
  __newindex = refuse,
  __metatable = readonly({}),
})

local vm = {}
vm.set_keys = function(keys, argv)
  G.KEYS = keys
  G.ARGV = argv
end
vm.xpcall = xpcall_
-- A function gets its keys and arguments as parameters.
vm.invoke = function(f, h, keys, args)
  return xpcall_(function()
    return f(keys, args)
  end, h)
end
vm.loading = function(on)
  current = on and LOADING or G
end
vm.library, vm.load_api, vm.readonly = redis, load_api, behind
return vm
