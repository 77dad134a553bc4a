-- Runs once when the scripting VM is created, with every standard function still reachable.
-- It builds the `redis`/`server` library around the host functions rockslot passes in, then
-- seals the global table as Valkey does: reading a missing global and writing any global are
-- errors, and the library tables are read-only. Returns the function that sets KEYS/ARGV.
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
  return ok, host.fix_error((...))
end
G.pcall = function(...)
  return fix(pcall_(...))
end
G.next = function(t, k)
  return next_(real(t), k)
end
G.pairs = function(t)
  return next_, real(t), nil
end
G.ipairs = function(t)
  return ipairs_(real(t))
end
G.rawset = function(t, k, v)
  if t == _G then
    error_("Attempt to modify a readonly table", 0)
  end
  return rawset_(t, k, v)
end

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
  __index = function(_, k)
    local v = G[k]
    if v == nil then
      error_("Script attempted to access nonexistent global variable '" .. tostring_(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function()
    error_("Attempt to modify a readonly table", 2)
  end,
  __metatable = readonly({}),
})

return function(keys, argv)
  G.KEYS = keys
  G.ARGV = argv
end, G.xpcall, redis
