//! Lua scripting as Valkey embeds it: a Lua 5.1 VM for EVAL scripts (cached by SHA1) and one
//! for function libraries (`functions`), the `redis`/`server` library, the sandbox (sealed
//! globals, read-only library tables) and the conversions between replies and Lua values.
//!
//! Owns: the VMs, the script cache, the loaded libraries, error texts and positions. Must not: run commands itself;
//! `redis.call` goes to the [`Host`] the caller passes (the command layer), so the VM never sees
//! storage, the cluster or a socket.

mod bound;
mod convert;
mod functions;
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

pub use functions::{
    Change, FunctionCall, FunctionView, LibraryView, RestorePolicy, RO_WITH_WRITES,
};
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
#[derive(Clone, Copy)]
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
    /// The prelude's entry points (see the end of `prelude.lua`).
    set_keys: Function,
    invoke: Function,
    loading: Function,
    handler: Function,
    xpcall: Function,
    /// The running script, for the host functions.
    current: bound::Current,
    /// SHA1 (lower-case hex) -> (compiled function, body).
    scripts: HashMap<String, Cached>,
}

/// Both VMs and the libraries loaded in the functions VM; one lock, so one script or
/// function runs at a time, as in Valkey.
struct Engines {
    eval: Vm,
    func: Vm,
    libs: functions::Libraries,
}

/// The node's scripting engine.
pub struct Scripts {
    vm: Mutex<Engines>,
    busy: Arc<Busy>,
    /// What other connections read without the VM: function names and flags (FCALL's
    /// checks, FUNCTION STATS).
    index: parking_lot::RwLock<functions::Index>,
    /// Libraries committed by replication (or by this node) not yet compared with the loaded
    /// ones; the committing thread must not wait for the VM, so the VM picks them up.
    incoming: Arc<Mutex<Option<Vec<u8>>>>,
}

/// The running script, as other connections see it without the VM (BUSY, SCRIPT KILL).
#[derive(Default)]
struct Busy {
    /// Unix ms when the running script started; 0 when none runs.
    since_ms: AtomicU64,
    kill: AtomicBool,
    wrote: AtomicBool,
    /// The running function's name and its caller's command; `None` for an EVAL script.
    function: Mutex<Option<(String, Vec<Bytes>)>>,
    /// Unix ms when a library's load stops (FUNCTION LOAD); 0: no limit.
    load_deadline_ms: AtomicU64,
    /// The running script's `long_run` succeeded, or gave up after [`LONG_RUN_TRIES`].
    ran_long: AtomicBool,
    long_run_tries: std::sync::atomic::AtomicU8,
    long_run: std::sync::OnceLock<fn() -> bool>,
}

impl Busy {
    fn running_function(&self) -> bool {
        self.function.lock().is_some()
    }

    fn killed_line(&self) -> &'static str {
        if self.running_function() {
            "Script killed by user with FUNCTION KILL."
        } else {
            "Script killed by user with SCRIPT KILL."
        }
    }
}

/// Valkey's reply while a script runs.
pub const BUSY: &str =
    "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// Valkey's reply while a function runs.
pub const BUSY_FUNCTION: &str =
    "BUSY Valkey is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

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
    /// A function runs and SCRIPT KILL was asked, or the other way round.
    OtherKind(&'static str),
}

impl KillRefused {
    /// Valkey's error line.
    pub fn line(&self) -> &'static str {
        match self {
            KillRefused::OtherKind(busy) => busy,
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
        let vm = |what| Vm::new(&busy).map_err(|e| format!("creating the Lua VM for {what}: {e}"));
        let engines = Engines {
            eval: vm("scripts")?,
            func: vm("functions")?,
            libs: functions::Libraries::none(),
        };
        Ok(Scripts {
            vm: Mutex::new(engines),
            busy,
            index: Default::default(),
            incoming: Default::default(),
        })
    }

    /// Valkey's BUSY line for what runs now.
    pub fn busy_line(&self) -> &'static str {
        if self.busy.running_function() {
            BUSY_FUNCTION
        } else {
            BUSY
        }
    }

    /// Runs `f` as the running script (BUSY for others, killable), `function` naming it when
    /// it is a function.
    fn running<R>(&self, function: Option<(String, Vec<Bytes>)>, f: impl FnOnce() -> R) -> R {
        *self.busy.function.lock() = function;
        self.busy.kill.store(false, Ordering::Release);
        self.busy.wrote.store(false, Ordering::Release);
        self.busy.ran_long.store(false, Ordering::Release);
        self.busy.long_run_tries.store(0, Ordering::Release);
        self.busy.since_ms.store(now_ms().max(1), Ordering::Release);
        let r = f();
        self.busy.since_ms.store(0, Ordering::Release);
        // A kill that raced the end must not stop the next thing the VMs run (a library load).
        self.busy.kill.store(false, Ordering::Release);
        *self.busy.function.lock() = None;
        r
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

    /// SCRIPT KILL (`function` false) or FUNCTION KILL: stops the running script at its next
    /// instruction check, unless it wrote.
    pub fn kill(&self, function: bool) -> Result<(), KillRefused> {
        if self.busy.since_ms.load(Ordering::Acquire) == 0 {
            return Err(KillRefused::NotBusy);
        }
        // Valkey answers UNKILLABLE before looking at which kind of script runs.
        if self.busy.wrote.load(Ordering::Acquire) {
            return Err(KillRefused::Unkillable);
        }
        if self.busy.running_function() != function {
            return Err(KillRefused::OtherKind(self.busy_line()));
        }
        self.busy.kill.store(true, Ordering::Release);
        Ok(())
    }

    /// SCRIPT LOAD: compiles and caches `body`; its SHA1, or Valkey's compile error line.
    pub fn load(&self, body: &[u8]) -> Result<String, String> {
        self.vm.lock().eval.compile(body)
    }

    pub fn exists(&self, sha: &str) -> bool {
        self.vm
            .lock()
            .eval
            .scripts
            .contains_key(&sha.to_ascii_lowercase())
    }

    /// The body of a cached script (SCRIPT SHOW).
    pub fn body(&self, sha: &str) -> Option<Bytes> {
        self.vm
            .lock()
            .eval
            .scripts
            .get(&sha.to_ascii_lowercase())
            .map(|c| c.body.clone())
    }

    /// SCRIPT FLUSH: forgets every script and starts a fresh VM.
    pub fn flush(&self) -> Result<(), String> {
        let fresh = Vm::new(&self.busy).map_err(|e| format!("creating the Lua VM: {e}"))?;
        self.vm.lock().eval = fresh;
        Ok(())
    }

    /// Waits for the VM (at most `patience`, then BUSY).
    fn engines(&self, patience: Patience) -> Result<parking_lot::MutexGuard<'_, Engines>, Waited> {
        match patience {
            Patience::Forever => Ok(self.vm.lock()),
            Patience::Busy(d) => self
                .vm
                .try_lock_for(d)
                .ok_or(Waited::Reply(Reply::Error(BUSY.into()))),
            Patience::Try => self.vm.try_lock_for(TRY_VM).ok_or(Waited::Contended),
        }
    }

    /// Runs a script with `keys` and `argv`; its reply, with Valkey's error texts. How long
    /// it waits for another script to finish is the caller's `patience` (a caller that holds
    /// key locks must not wait long for a script that may wait for them).
    pub fn run(
        &self,
        src: Source<'_>,
        keys: &[Bytes],
        argv: &[Bytes],
        host: &mut dyn Host,
        patience: Patience,
    ) -> Result<Reply, Contended> {
        let mut engines = match self.engines(patience) {
            Ok(e) => e,
            Err(w) => return w.into_result(),
        };
        let vm = &mut engines.eval;
        let sha = match src {
            Source::Body(body) => match vm.compile(body) {
                Ok(sha) => sha,
                Err(e) => return Ok(Reply::Error(e)),
            },
            Source::Sha(sha) => sha.to_ascii_lowercase(),
        };
        let Some((f, flags)) = vm.scripts.get(&sha).map(|c| (c.f.clone(), c.flags)) else {
            return Ok(Reply::Error("NOSCRIPT No matching script.".into()));
        };
        if let Err(e) = host.begin(flags) {
            return Ok(Reply::Error(e));
        }
        let r = self.running(None, || vm.run(&f, Call::Eval { keys, argv }, host));
        Ok(outcome(r, &sha))
    }

    /// What a script that runs longer than [`LONG_RUN_MS`] calls from the VM's thread: the
    /// host moves its other work elsewhere (a runtime worker hands its tasks on) and says
    /// whether that happened; a failed try is repeated at later checks, up to
    /// [`LONG_RUN_TRIES`] times.
    pub fn on_long_run(&self, f: fn() -> bool) {
        let _ = self.busy.long_run.set(f);
    }
}

/// How long a caller waits for the VM while another script runs.
#[derive(Debug, Clone, Copy)]
pub enum Patience {
    /// Until it is free.
    Forever,
    /// At most this long, then BUSY.
    Busy(std::time::Duration),
    /// A moment ([`TRY_VM`]), then [`Contended`]: the caller, which may hold key locks and
    /// runs on a shared thread, lets go of both and waits [`Patience::Forever`] instead.
    Try,
}

/// The VM was busy for a [`Patience::Try`] caller; nothing ran.
#[derive(Debug)]
pub struct Contended;

/// How long [`Patience::Try`] waits: about one short script, so a pipeline of scripts from
/// two connections alternates without giving up the caller's thread each time.
const TRY_VM: std::time::Duration = std::time::Duration::from_micros(200);

/// A script running this long (ms) asks its host to move other work off its thread.
const LONG_RUN_MS: u64 = 20;

/// How often a long script tries to move its host's other work before running on regardless.
const LONG_RUN_TRIES: u8 = 5;

enum Waited {
    Reply(Reply),
    Contended,
}

impl Waited {
    fn into_result(self) -> Result<Reply, Contended> {
        match self {
            Waited::Reply(r) => Ok(r),
            Waited::Contended => Err(Contended),
        }
    }
}

fn outcome(r: mlua::Result<Result<Reply, ScriptError>>, name: &str) -> Reply {
    match r {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => e.into_reply(name),
        Err(e) => Reply::Error(format!("ERR Error running script: {e}")),
    }
}

/// How a compiled chunk is called: an EVAL script sees KEYS/ARGV, a function gets them as
/// its two parameters.
enum Call<'a> {
    Eval {
        keys: &'a [Bytes],
        argv: &'a [Bytes],
    },
    Function {
        keys: &'a [Bytes],
        args: &'a [Bytes],
    },
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
                    return Err(mlua::Error::runtime(watch.killed_line()));
                }
                let since = watch.since_ms.load(Ordering::Acquire);
                if since != 0
                    && !watch.ran_long.load(Ordering::Acquire)
                    && now_ms().saturating_sub(since) >= LONG_RUN_MS
                {
                    let tries = watch.long_run_tries.fetch_add(1, Ordering::AcqRel) + 1;
                    let moved = watch.long_run.get().is_none_or(|f| f());
                    if moved || tries >= LONG_RUN_TRIES {
                        watch.ran_long.store(true, Ordering::Release);
                    }
                }
                let deadline = watch.load_deadline_ms.load(Ordering::Acquire);
                if deadline != 0 && now_ms() > deadline {
                    return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
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
            lua.create_function(move |_, ()| {
                Ok(watch
                    .kill
                    .load(Ordering::Acquire)
                    .then(|| watch.killed_line()))
            })?,
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
        let vm: Table = lua
            .load(include_str!("prelude.lua"))
            .set_name("=prelude")
            .call(host)?;
        let library = vm.get::<Table>("library")?;
        let current = bound::Current::default();
        bound::install(&lua, &current, &library)?;
        lua.set_named_registry_value(LIBRARY_KEY, library)?;
        lua.set_named_registry_value(LOAD_API_KEY, vm.get::<Table>("load_api")?)?;
        lua.set_named_registry_value(READONLY_KEY, vm.get::<Table>("readonly")?)?;
        let handler = lua.create_function(|lua, err: Value| convert::error_handler(lua, err))?;
        Ok(Vm {
            set_keys: vm.get("set_keys")?,
            invoke: vm.get("invoke")?,
            loading: vm.get("loading")?,
            xpcall: vm.get("xpcall")?,
            lua,
            handler,
            current,
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
        &self,
        f: &Function,
        call: Call<'_>,
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
        let params = match call {
            Call::Eval { keys, argv } => {
                self.set_keys.call::<()>((strings(keys)?, strings(argv)?))?;
                None
            }
            Call::Function { keys, args } => Some((strings(keys)?, strings(args)?)),
        };
        let run = std::cell::RefCell::new(Run { host, resp3: false });
        let _binding = self.current.bind(&run);
        let r = match params {
            None => self
                .xpcall
                .call::<MultiValue>((f.clone(), self.handler.clone())),
            Some((keys, args)) => {
                self.invoke
                    .call::<MultiValue>((f.clone(), self.handler.clone(), keys, args))
            }
        };
        let mut vals = r?.into_iter();
        let ok = matches!(vals.next(), Some(Value::Boolean(true)));
        let v = vals.next().unwrap_or(Value::Nil);
        Ok(if ok {
            Ok(convert::lua_to_reply(&v, run.borrow().resp3))
        } else {
            Err(convert::script_error(&v))
        })
    }
}

/// Registry name of the table whose keys are the read-only tables (proxies and `_G`).
const READONLY_KEY: &str = "rockslot.readonly";
/// `redis.log`'s arguments, checked as Valkey does: the level and the message.
fn log_args(args: &MultiValue) -> mlua::Result<(i64, String)> {
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
    Ok((level, text.join(" ")))
}

/// Registry name of the `redis` library table, where each run binds its host functions.
const LIBRARY_KEY: &str = "rockslot.library";
/// Registry name of the table behind `server` while a library loads, where the load binds
/// `register_function` and `log`.
const LOAD_API_KEY: &str = "rockslot.load_api";
