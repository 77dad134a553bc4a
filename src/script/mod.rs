//! Lua scripting as Valkey embeds it: one Lua 5.1 VM per node, scripts cached by SHA1, the
//! `redis`/`server` library, the sandbox (sealed globals, read-only library tables) and the
//! conversions between replies and Lua values.
//!
//! Owns: the VM, the script cache, error texts and positions. Must not: run commands itself;
//! `redis.call` goes to the [`Host`] the caller passes (the command layer), so the VM never sees
//! storage, the cluster or a socket.

mod convert;
mod libs;
mod pack;
mod shebang;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use parking_lot::Mutex;

use crate::resp::Reply;

pub use shebang::ScriptFlags;

/// What runs a command for a script.
pub trait Host {
    /// Runs `args` as a command from the script and returns its reply, or the error line
    /// (without `-`) when the call is refused or fails.
    /// `resp3`: the script chose RESP3 (`redis.setresp(3)`) for what its commands reply.
    fn call(&mut self, args: Vec<Bytes>, resp3: bool) -> Reply;
    /// `redis.log` at a Valkey log level (0 debug .. 3 warning).
    fn log(&mut self, level: i64, msg: &str);
    /// The script about to run declared `flags` (its `#!lua` line): the host applies them, or
    /// refuses the script with an error line.
    fn begin(&mut self, flags: ScriptFlags) -> Result<(), String>;
    /// `redis.acl_check_cmd`: whether the caller may run `args`; `None` when no such command.
    fn may_run(&mut self, args: &[Bytes]) -> Option<bool>;
}

/// A script to run: its body (EVAL) or the SHA1 of a cached one (EVALSHA).
pub enum Source<'a> {
    Body(&'a [u8]),
    Sha(&'a str),
}

/// A compiled script with the text it came from and its shebang flags.
struct Cached {
    f: Function,
    body: Bytes,
    flags: ScriptFlags,
}

struct Vm {
    lua: Lua,
    set_keys: Function,
    handler: Function,
    xpcall: Function,
    /// SHA1 (lower-case hex) -> (compiled function, body).
    scripts: HashMap<String, Cached>,
}

/// The node's scripting engine. Scripts run one at a time, as in Valkey.
pub struct Scripts {
    vm: Mutex<Vm>,
    busy: Arc<Busy>,
}

/// The running script, as other connections see it without the VM (BUSY, SCRIPT KILL).
#[derive(Default)]
struct Busy {
    /// Unix ms when the running script started; 0 when none runs.
    since_ms: AtomicU64,
    kill: AtomicBool,
    wrote: AtomicBool,
}

/// Valkey's reply while a script runs.
pub const BUSY: &str =
    "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Lua instructions between two looks at the kill flag.
const KILL_CHECK_EVERY: u32 = 10_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why SCRIPT KILL did nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum KillRefused {
    NotBusy,
    Unkillable,
}

impl KillRefused {
    /// Valkey's error line.
    pub fn line(&self) -> &'static str {
        match self {
            KillRefused::NotBusy => "NOTBUSY No scripts in execution right now.",
            KillRefused::Unkillable => {
                "UNKILLABLE Sorry the script already executed write commands against the \
                 dataset. You can either wait the script termination or kill the server in a \
                 hard way using the SHUTDOWN NOSAVE command."
            }
        }
    }
}

/// The SHA1 of `body` in lower-case hex, as Valkey names scripts.
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Per-run state the VM's host functions read: the host, RESP version of `redis.call`
/// replies (`redis.setresp`), and the read-only flag.
struct Run<'h> {
    host: &'h mut dyn Host,
    resp3: bool,
}

impl Scripts {
    pub fn new() -> Result<Scripts, String> {
        let busy = Arc::new(Busy::default());
        let vm = Vm::new(&busy).map_err(|e| format!("creating the Lua VM: {e}"))?;
        Ok(Scripts {
            vm: Mutex::new(vm),
            busy,
        })
    }

    /// How long the running script has run (ms); `None` when none runs.
    pub fn busy_ms(&self) -> Option<u64> {
        match self.busy.since_ms.load(Ordering::Acquire) {
            0 => None,
            t => Some(now_ms().saturating_sub(t)),
        }
    }

    /// The running script wrote: SCRIPT KILL may no longer stop it.
    pub fn note_write(&self) {
        self.busy.wrote.store(true, Ordering::Release);
    }

    /// SCRIPT KILL: stops the running script at its next instruction check, unless it wrote.
    pub fn kill(&self) -> Result<(), KillRefused> {
        if self.busy.since_ms.load(Ordering::Acquire) == 0 {
            return Err(KillRefused::NotBusy);
        }
        if self.busy.wrote.load(Ordering::Acquire) {
            return Err(KillRefused::Unkillable);
        }
        self.busy.kill.store(true, Ordering::Release);
        Ok(())
    }

    /// SCRIPT LOAD: compiles and caches `body`; its SHA1, or Valkey's compile error line.
    pub fn load(&self, body: &[u8]) -> Result<String, String> {
        let mut vm = self.vm.lock();
        vm.compile(body)
    }

    pub fn exists(&self, sha: &str) -> bool {
        self.vm
            .lock()
            .scripts
            .contains_key(&sha.to_ascii_lowercase())
    }

    /// The body of a cached script (SCRIPT SHOW).
    pub fn body(&self, sha: &str) -> Option<Bytes> {
        self.vm
            .lock()
            .scripts
            .get(&sha.to_ascii_lowercase())
            .map(|c| c.body.clone())
    }

    /// SCRIPT FLUSH: forgets every script and starts a fresh VM.
    pub fn flush(&self) -> Result<(), String> {
        let fresh = Vm::new(&self.busy).map_err(|e| format!("creating the Lua VM: {e}"))?;
        *self.vm.lock() = fresh;
        Ok(())
    }

    /// Runs a script with `keys` and `argv`; its reply, with Valkey's error texts. With
    /// `patience`, waits at most that long for another script to finish (a caller that holds
    /// key locks must not wait for a script that may wait for them), then answers BUSY.
    pub fn run(
        &self,
        src: Source<'_>,
        keys: &[Bytes],
        argv: &[Bytes],
        host: &mut dyn Host,
        patience: Option<std::time::Duration>,
    ) -> Reply {
        let mut vm = match patience {
            None => self.vm.lock(),
            Some(d) => match self.vm.try_lock_for(d) {
                Some(vm) => vm,
                None => return Reply::Error(BUSY.into()),
            },
        };
        let sha = match src {
            Source::Body(body) => match vm.compile(body) {
                Ok(sha) => sha,
                Err(e) => return Reply::Error(e),
            },
            Source::Sha(sha) => sha.to_ascii_lowercase(),
        };
        let Some((f, flags)) = vm.scripts.get(&sha).map(|c| (c.f.clone(), c.flags)) else {
            return Reply::Error("NOSCRIPT No matching script.".into());
        };
        if let Err(e) = host.begin(flags) {
            return Reply::Error(e);
        }
        self.busy.kill.store(false, Ordering::Release);
        self.busy.wrote.store(false, Ordering::Release);
        self.busy.since_ms.store(now_ms().max(1), Ordering::Release);
        let r = vm.run(&f, keys, argv, host);
        self.busy.since_ms.store(0, Ordering::Release);
        match r {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => e.into_reply(&sha),
            Err(e) => Reply::Error(format!("ERR Error running script: {e}")),
        }
    }
}

/// A script's error: the message (`CODE text`) and, when raised, where.
#[derive(Debug, PartialEq)]
struct ScriptError {
    msg: String,
    at: Option<(String, i64)>,
}

impl ScriptError {
    fn into_reply(self, sha: &str) -> Reply {
        let msg = convert::one_line(&self.msg);
        match self.at {
            Some((source, line)) => {
                Reply::Error(format!("{msg} script: {sha}, on {source}:{line}."))
            }
            None => Reply::Error(msg),
        }
    }
}

impl Vm {
    fn new(busy: &Arc<Busy>) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS,
            LuaOptions::default(),
        )?;
        let watch = Arc::clone(busy);
        lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(KILL_CHECK_EVERY),
            move |_, _| {
                // Raised again at every check, so a script's own pcall cannot swallow it.
                if watch.kill.load(Ordering::Acquire) {
                    return Err(mlua::Error::runtime(
                        "Script killed by user with SCRIPT KILL.",
                    ));
                }
                Ok(mlua::VmState::Continue)
            },
        );
        let host = lua.create_table()?;
        host.set(
            "sha1hex",
            lua.create_function(|lua, args: MultiValue| {
                let (Some(Value::String(s)), 1) = (args.front(), args.len()) else {
                    return Err(mlua::Error::runtime("wrong number of arguments"));
                };
                lua.create_string(sha1hex(&s.as_bytes()))
            })?,
        )?;
        host.set(
            "error_text",
            lua.create_function(|_, s: mlua::String| Ok(convert::error_reply_text(&s.as_bytes())))?,
        )?;
        host.set(
            "fix_error",
            lua.create_function(|lua, v: Value| convert::pcall_error(lua, v))?,
        )?;
        let watch = Arc::clone(busy);
        host.set(
            "killed",
            lua.create_function(move |_, ()| Ok(watch.kill.load(Ordering::Acquire)))?,
        )?;
        host.set(
            "rawset",
            lua.create_function(|lua, (t, k, v): (Table, Value, Value)| {
                let readonly: Table = lua.named_registry_value(READONLY_KEY)?;
                if readonly.raw_get::<Value>(&t)? != Value::Nil {
                    return Err(mlua::Error::runtime("Attempt to modify a readonly table"));
                }
                t.raw_set(k, v)?;
                Ok(t)
            })?,
        )?;
        host.set("bit", libs::bit(&lua)?)?;
        host.set("cjson", libs::cjson(&lua)?)?;
        host.set("cmsgpack", pack::cmsgpack(&lua)?)?;
        host.set("struct", pack::structs(&lua)?)?;
        let (set_keys, xpcall, library, readonly): (Function, Function, Table, Table) = lua
            .load(include_str!("prelude.lua"))
            .set_name("=prelude")
            .call(host)?;
        lua.set_named_registry_value(LIBRARY_KEY, library)?;
        lua.set_named_registry_value(READONLY_KEY, readonly)?;
        let handler = lua.create_function(|lua, err: Value| convert::error_handler(lua, err))?;
        Ok(Vm {
            lua,
            set_keys,
            handler,
            xpcall,
            scripts: HashMap::new(),
        })
    }

    fn compile(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code) = shebang::parse(body)?;
        let f = self
            .lua
            .load(code)
            .set_name("@user_script")
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    convert::one_line(&convert::lua_error_text(&e))
                )
            })?;
        let body = Bytes::copy_from_slice(body);
        self.scripts.insert(sha.clone(), Cached { f, body, flags });
        Ok(sha)
    }

    fn run(
        &mut self,
        f: &Function,
        keys: &[Bytes],
        argv: &[Bytes],
        host: &mut dyn Host,
    ) -> mlua::Result<Result<Reply, ScriptError>> {
        let lua = &self.lua;
        let strings = |items: &[Bytes]| -> mlua::Result<Table> {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, a) in items.iter().enumerate() {
                t.raw_set(i + 1, lua.create_string(a)?)?;
            }
            Ok(t)
        };
        self.set_keys.call::<()>((strings(keys)?, strings(argv)?))?;
        let run = std::cell::RefCell::new(Run { host, resp3: false });
        let bound: Table = lua.named_registry_value(LIBRARY_KEY)?;
        let outcome = lua.scope(|scope| {
            let command = |raise: bool| {
                let run = &run;
                move |lua: &Lua, args: MultiValue| -> mlua::Result<Value> {
                    let resp3 = run.borrow().resp3;
                    let reply = match convert::command_args(lua, &args) {
                        Ok(args) => run.borrow_mut().host.call(args, resp3),
                        Err(e) => Reply::Error(e),
                    };
                    match reply {
                        Reply::Error(e) if raise => Err(convert::raise(&e)),
                        reply => convert::reply_to_lua(lua, &reply, resp3),
                    }
                }
            };
            let call = scope.create_function(command(true))?;
            let pcall = scope.create_function(command(false))?;
            let setresp = scope.create_function(|_, v: MultiValue| {
                match v.front().and_then(convert::lua_number_to_i64) {
                    Some(2) if v.len() == 1 => run.borrow_mut().resp3 = false,
                    Some(3) if v.len() == 1 => run.borrow_mut().resp3 = true,
                    _ if v.len() != 1 => {
                        return Err(mlua::Error::runtime(
                            "redis.setresp() requires one argument.",
                        ))
                    }
                    _ => return Err(mlua::Error::runtime("RESP version must be 2 or 3.")),
                }
                Ok(())
            })?;
            let log = scope.create_function(|_, args: MultiValue| {
                if args.len() < 2 {
                    return Err(mlua::Error::runtime(
                        "redis.log() requires two arguments or more.",
                    ));
                }
                let mut it = args.iter();
                let Some(level) = it
                    .next()
                    .and_then(convert::lua_number_to_i64)
                    .filter(|l| (0..=3).contains(l))
                else {
                    return Err(mlua::Error::runtime("Invalid log level."));
                };
                let text: Vec<String> = it.map(convert::lua_display).collect();
                run.borrow_mut().host.log(level, &text.join(" "));
                Ok(())
            })?;
            let acl = scope.create_function(|lua, args: MultiValue| {
                let args = convert::command_args(lua, &args).map_err(|_| {
                    mlua::Error::runtime("Invalid command passed to server.acl_check_cmd()")
                })?;
                run.borrow_mut().host.may_run(&args).ok_or_else(|| {
                    mlua::Error::runtime("Invalid command passed to server.acl_check_cmd()")
                })
            })?;
            bound.raw_set("acl_check_cmd", acl)?;
            bound.raw_set("call", call)?;
            bound.raw_set("pcall", pcall)?;
            bound.raw_set("setresp", setresp)?;
            bound.raw_set("log", log)?;
            let r = self
                .xpcall
                .call::<MultiValue>((f.clone(), self.handler.clone()));
            for name in ["call", "pcall", "setresp", "log", "acl_check_cmd"] {
                bound.raw_set(name, Value::Nil)?;
            }
            let mut vals = r?.into_iter();
            let ok = matches!(vals.next(), Some(Value::Boolean(true)));
            let v = vals.next().unwrap_or(Value::Nil);
            Ok(if ok {
                Ok(convert::lua_to_reply(&v, run.borrow().resp3))
            } else {
                Err(convert::script_error(&v))
            })
        });
        outcome
    }
}

/// Registry name of the table whose keys are the read-only tables (proxies and `_G`).
const READONLY_KEY: &str = "rockslot.readonly";
/// Registry name of the `redis` library table, where each run binds its host functions.
const LIBRARY_KEY: &str = "rockslot.library";
