//! Function libraries (Valkey 7+): `#!lua name=<lib>` code whose body registers functions with
//! `server.register_function` while it loads, then FCALL runs them. Libraries load into their
//! own VM, in the globals Valkey gives a loading library (only `server.register_function`,
//! `server.log` and the version constants); the functions run in the usual sandbox.
//!
//! Owns: library metadata, loading, the name rules, FUNCTION LOAD/DELETE/FLUSH/RESTORE's
//! outcomes and the payload of the loaded set. Must not: store anything; the caller passes a
//! `store` that commits the new payload before the new set is used.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Function, MultiValue, Table, Value};

use super::convert;
use super::{now_ms, Busy, Call, Engines, Host, Reply, ScriptFlags, Scripts, Vm, LOAD_API_KEY};

/// FCALL_RO of a function without `no-writes`.
pub const RO_WITH_WRITES: &str = "ERR Can not execute a script with write flag using *_ro command.";

/// One FCALL: the function's name (any case), whether FCALL_RO, its keys and arguments, and
/// the caller's whole command (FUNCTION STATS shows it).
#[derive(Clone, Copy)]
pub struct FunctionCall<'a> {
    pub name: &'a [u8],
    pub read_only: bool,
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    pub command: &'a [Bytes],
}

/// How long FUNCTION LOAD lets a library's body run (Valkey's LOAD_TIMEOUT_MS).
const LOAD_TIMEOUT_MS: u64 = 500;

/// A registered function.
struct Registered {
    name: String,
    description: Option<Bytes>,
    flags: ScriptFlags,
    f: Function,
}

struct Library {
    name: String,
    code: Bytes,
    /// By name (case-sensitive, as Valkey's per-library table).
    functions: BTreeMap<String, Registered>,
}

/// The loaded libraries, by name (case-sensitive).
#[derive(Default)]
pub(super) struct Libraries {
    libs: BTreeMap<String, Arc<Library>>,
    /// The FUNCTION DUMP payload of exactly these libraries.
    payload: Vec<u8>,
    /// Why the libraries stored on this node (or sent by the primary) did not load; then
    /// `payload` is that record, none are loaded, and only a FLUSH may replace the record
    /// (a LOAD would silently drop the libraries that did not load).
    broken: Option<String>,
}

/// What other connections read about functions without the VM.
#[derive(Default)]
pub(super) struct Index {
    /// Lower-cased function name (FCALL's lookup is case-insensitive) -> flags.
    functions: HashMap<String, ScriptFlags>,
    libraries: usize,
}

/// A library as FUNCTION LIST shows it.
pub struct LibraryView {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<FunctionView>,
}

pub struct FunctionView {
    pub name: String,
    pub description: Option<Bytes>,
    pub flags: ScriptFlags,
}

/// FUNCTION RESTORE's policy towards libraries already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

/// A change to the loaded libraries.
pub enum Change<'a> {
    Load {
        code: &'a [u8],
        replace: bool,
    },
    Delete(&'a [u8]),
    Flush,
    Restore {
        payload: &'a [u8],
        policy: RestorePolicy,
    },
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The library's name from its `#!<engine> name=<lib>` line, and where its code starts (the
/// line's `\n`, so Lua's line numbers are the text's), with Valkey's checks in its order.
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let invalid = || "ERR Invalid library metadata".to_string();
    let end = code.iter().position(|&b| b == b'\n').ok_or_else(invalid)?;
    if code[..end].contains(&0) {
        return Err(invalid());
    }
    let parts = crate::resp::split_args(&code[..end])
        .filter(|p| !p.is_empty())
        .ok_or_else(invalid)?;
    let engine = String::from_utf8_lossy(&parts[0][2.min(parts[0].len())..]).into_owned();
    let mut name: Option<String> = None;
    for p in &parts[1..] {
        let text = String::from_utf8_lossy(p);
        match p.get(..5) {
            Some(k) if k.eq_ignore_ascii_case(b"name=") => {
                if name.is_some() {
                    return Err(
                        "ERR Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(text[5..].to_string());
            }
            _ => return Err(format!("ERR Invalid metadata value given: {text}")),
        }
    }
    let name = name.ok_or("ERR Library name was not given")?;
    if !valid_name(&name) {
        return Err(
            "ERR Library names can only contain letters, numbers, or underscores(_) and \
                    must be at least one character long"
                .into(),
        );
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    Ok((name, end))
}

/// `server.register_function`'s arguments, checked as Valkey does (errors without `ERR `).
fn registration(
    args: MultiValue,
) -> Result<(String, Option<Bytes>, ScriptFlags, Function), String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(n) => {
            Some(crate::script::convert::lua_display(&Value::Number(*n)).into_bytes())
        }
        _ => None,
    };
    let name_of = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    match args.len() {
        2 => {
            let name = text(&args[0])
                .ok_or("first argument to server.register_function must be a string")?;
            let Value::Function(f) = &args[1] else {
                return Err(
                    "second argument to server.register_function must be a function".into(),
                );
            };
            Ok((name_of(name), None, flags, f.clone()))
        }
        1 => {
            let Value::Table(t) = &args[0] else {
                return Err(
                    "calling server.register_function with a single argument is only \
                            applicable to Lua table (representing named arguments)."
                        .into(),
                );
            };
            let (mut name, mut description, mut callback) = (None, None, None);
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let key = text(&k).ok_or(
                    "named argument key given to server.register_function is not a string",
                )?;
                match String::from_utf8_lossy(&key).to_ascii_lowercase().as_str() {
                    "function_name" => name = Some(text(&v).ok_or(
                        "function_name argument given to server.register_function must be a string",
                    )?),
                    "description" => description = Some(text(&v).ok_or(
                        "description argument given to server.register_function must be a string",
                    )?),
                    "callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => {
                            return Err("callback argument given to server.register_function \
                                        must be a function"
                                .into())
                        }
                    },
                    "flags" => {
                        let Value::Table(list) = v else {
                            return Err("flags argument to server.register_function must be a \
                                        table representing function flags"
                                .into());
                        };
                        for i in 1.. {
                            let f = match list.raw_get::<Value>(i) {
                                Ok(Value::Nil) => break,
                                Ok(Value::String(s)) => s.to_string_lossy().to_ascii_lowercase(),
                                _ => return Err("unknown flag given".into()),
                            };
                            match f.as_str() {
                                "no-writes" => flags.no_writes = true,
                                "allow-oom" => flags.allow_oom = true,
                                "allow-stale" => flags.allow_stale = true,
                                "no-cluster" => flags.no_cluster = true,
                                "allow-cross-slot-keys" => flags.allow_cross_slot_keys = true,
                                _ => return Err("unknown flag given".into()),
                            }
                        }
                    }
                    _ => return Err("unknown argument given to server.register_function".into()),
                }
            }
            let name = name.ok_or("server.register_function must get a function name argument")?;
            let f = callback.ok_or("server.register_function must get a callback argument")?;
            Ok((name_of(name), description.map(Bytes::from), flags, f))
        }
        _ => Err("wrong number of arguments to server.register_function".into()),
    }
}

impl Vm {
    /// Compiles and runs a library's body, collecting what it registers.
    fn load_library(
        &self,
        code: &[u8],
        body_at: usize,
        busy: &Busy,
        timeout: bool,
    ) -> Result<Vec<Registered>, String> {
        let chunk = self
            .lua
            .load(&code[body_at..])
            .set_name("@user_function")
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling function: {}",
                    convert::one_line(&convert::lua_error_text(&e))
                )
            })?;
        let lua_err = |e: mlua::Error| format!("ERR Error registering functions: {e}");
        let api: Table = self
            .lua
            .named_registry_value(LOAD_API_KEY)
            .map_err(lua_err)?;
        let registered = std::cell::RefCell::new(Vec::new());
        busy.kill.store(false, Ordering::Release);
        // Whatever happens below, the deadline is lifted and the globals are the run-time ones
        // again (the deadline first: the hook must not interrupt the switch back).
        struct Loading<'a>(&'a Vm, &'a Busy);
        impl Drop for Loading<'_> {
            fn drop(&mut self) {
                self.1.load_deadline_ms.store(0, Ordering::Release);
                if let Err(e) = self.0.loading.call::<()>(false) {
                    tracing::error!("restoring the functions VM's globals: {e}");
                }
            }
        }
        let loading = Loading(self, busy);
        self.loading.call::<()>(true).map_err(lua_err)?;
        if timeout {
            busy.load_deadline_ms
                .store(now_ms() + LOAD_TIMEOUT_MS, Ordering::Release);
        }
        let r = self.lua.scope(|scope| {
            let register = scope.create_function(|_, args: MultiValue| {
                let (name, description, flags, f) =
                    registration(args).map_err(|e| convert::raise(&format!("ERR {e}")))?;
                registered.borrow_mut().push(Registered {
                    name,
                    description,
                    flags,
                    f,
                });
                Ok(())
            })?;
            let log = scope.create_function(|_, args: MultiValue| {
                let (level, text) = super::log_args(&args)?;
                match level {
                    0 | 1 => tracing::debug!("{text}"),
                    2 => tracing::info!("{text}"),
                    _ => tracing::warn!("{text}"),
                }
                Ok(())
            })?;
            api.raw_set("register_function", register)?;
            api.raw_set("log", log)?;
            let r = self
                .xpcall
                .call::<MultiValue>((chunk, self.handler.clone()));
            api.raw_set("register_function", Value::Nil)?;
            api.raw_set("log", Value::Nil)?;
            r
        });
        drop(loading);
        let mut vals = r.map_err(lua_err)?.into_iter();
        if !matches!(vals.next(), Some(Value::Boolean(true))) {
            let e = convert::script_error(&vals.next().unwrap_or(Value::Nil));
            return Err(format!("ERR Error registering functions: {}", e.msg));
        }
        Ok(registered.into_inner())
    }

    /// Loads a library and checks its functions' names among themselves.
    fn library_named(
        &self,
        name: String,
        body_at: usize,
        code: &[u8],
        busy: &Busy,
        timeout: bool,
    ) -> Result<Library, String> {
        let mut functions = BTreeMap::new();
        for r in self.load_library(code, body_at, busy, timeout)? {
            if !valid_name(&r.name) {
                return Err("ERR Function names can only contain letters, numbers, or \
                            underscores(_) and must be at least one character long"
                    .into());
            }
            // Valkey lets `f` and `F` share a library but then cannot delete it; refused here.
            if functions
                .keys()
                .any(|n: &String| n.eq_ignore_ascii_case(&r.name))
            {
                return Err("ERR Function already exists in the library".into());
            }
            functions.insert(r.name.clone(), r);
        }
        if functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        Ok(Library {
            name,
            code: Bytes::copy_from_slice(code),
            functions,
        })
    }
}

impl Libraries {
    /// No libraries (FUNCTION DUMP gives the bare footer, as Valkey's does).
    pub(super) fn none() -> Libraries {
        Libraries::default().sealed()
    }

    /// The set standing for a record that did not load.
    fn broken(payload: Vec<u8>, why: String) -> Libraries {
        Libraries {
            libs: BTreeMap::new(),
            payload,
            broken: Some(why),
        }
    }

    fn find(&self, name: &str) -> Option<&Registered> {
        self.libs
            .values()
            .flat_map(|l| l.functions.values())
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Adds `lib`, refusing a function name another library has.
    fn join(&mut self, lib: Arc<Library>) -> Result<(), String> {
        for f in lib.functions.values() {
            if self.find(&f.name).is_some() {
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
        self.libs.insert(lib.name.clone(), lib);
        Ok(())
    }

    fn sealed(mut self) -> Libraries {
        self.payload = crate::rdb::functions_payload(self.libs.values().map(|l| &l.code[..]));
        self
    }

    fn index(&self) -> Index {
        Index {
            functions: self
                .libs
                .values()
                .flat_map(|l| l.functions.values())
                .map(|f| (f.name.to_ascii_lowercase(), f.flags))
                .collect(),
            libraries: self.libs.len(),
        }
    }

    /// The libraries a payload holds, each loaded (no time limit, as Valkey's RESTORE).
    fn from_payload(vm: &Vm, payload: &[u8], busy: &Busy) -> Result<Libraries, String> {
        let codes = crate::rdb::read_functions_payload(payload).map_err(|e| format!("ERR {e}"))?;
        let mut out = Libraries::default();
        for code in codes {
            let (name, body_at) = metadata(&code)?;
            if out.libs.contains_key(&name) {
                return Err(format!("ERR Library '{name}' already exists"));
            }
            out.join(Arc::new(
                vm.library_named(name, body_at, &code, busy, false)?,
            ))?;
        }
        Ok(out.sealed())
    }
}

impl Scripts {
    /// Applies a change: the new set is built, `store` commits its payload, then it is used.
    /// Returns the loaded library's name for a load; errors are Valkey's lines.
    pub fn change_functions(
        &self,
        change: Change<'_>,
        store: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
    ) -> Result<Option<String>, String> {
        let mut e = self.vm.lock();
        self.sync(&mut e);
        if let Some(why) = &e.libs.broken {
            let replaces_all = matches!(
                change,
                Change::Flush
                    | Change::Restore {
                        policy: RestorePolicy::Flush,
                        ..
                    }
            );
            if !replaces_all {
                return Err(format!(
                    "ERR the function libraries stored on this node do not load ({why}); \
                     FUNCTION FLUSH or FUNCTION RESTORE <payload> FLUSH replaces them"
                ));
            }
        }
        let mut next = Libraries {
            libs: e.libs.libs.clone(),
            ..Libraries::default()
        };
        let mut loaded = None;
        match change {
            Change::Load { code, replace } => {
                let (name, body_at) = metadata(code)?;
                if next.libs.contains_key(&name) && !replace {
                    return Err(format!("ERR Library '{name}' already exists"));
                }
                let lib = e
                    .func
                    .library_named(name.clone(), body_at, code, &self.busy, true)?;
                next.libs.remove(&name);
                next.join(Arc::new(lib))?;
                loaded = Some(name);
            }
            Change::Delete(name) => {
                let name = String::from_utf8_lossy(name);
                if next.libs.remove(name.as_ref()).is_none() {
                    return Err("ERR Library not found".into());
                }
            }
            Change::Flush => next.libs.clear(),
            Change::Restore { payload, policy } => {
                let incoming = Libraries::from_payload(&e.func, payload, &self.busy)?;
                match policy {
                    RestorePolicy::Flush => next.libs.clear(),
                    RestorePolicy::Replace => {
                        next.libs.retain(|n, _| !incoming.libs.contains_key(n))
                    }
                    RestorePolicy::Append => {
                        if let Some(n) = incoming.libs.keys().find(|n| next.libs.contains_key(*n)) {
                            return Err(format!("ERR Library {n} already exists"));
                        }
                    }
                }
                for lib in incoming.libs.into_values() {
                    next.join(lib)?;
                }
            }
        }
        let next = next.sealed();
        store(next.payload.clone())?;
        *self.index.write() = next.index();
        e.libs = next;
        Ok(loaded)
    }

    /// Loads the libraries stored on this node (at start); an unreadable record leaves none
    /// loaded and is reported (the record itself stays as it is).
    pub fn load_stored(&self, payload: &[u8]) -> Result<(), String> {
        if payload.is_empty() {
            return Ok(());
        }
        let mut e = self.vm.lock();
        let libs = match Libraries::from_payload(&e.func, payload, &self.busy) {
            Ok(libs) => libs,
            Err(why) => {
                e.libs = Libraries::broken(payload.to_vec(), why.clone());
                *self.index.write() = e.libs.index();
                return Err(why);
            }
        };
        *self.index.write() = libs.index();
        e.libs = libs;
        Ok(())
    }

    /// Where committed library changes are announced (the keyspace's hook); never blocks.
    pub fn functions_inbox(&self) -> impl Fn(&[u8]) + Send + Sync + 'static {
        let inbox = Arc::clone(&self.incoming);
        move |payload: &[u8]| *inbox.lock() = Some(payload.to_vec())
    }

    /// Takes in libraries committed by replication since the VM last looked.
    fn sync(&self, e: &mut Engines) {
        let Some(payload) = self.incoming.lock().take() else {
            return;
        };
        if payload == e.libs.payload {
            return;
        }
        let libs = if payload.is_empty() {
            Ok(Libraries::none())
        } else {
            Libraries::from_payload(&e.func, &payload, &self.busy)
        };
        e.libs = libs.unwrap_or_else(|why| {
            tracing::error!("the function libraries from the primary do not load: {why}");
            Libraries::broken(payload, why)
        });
        *self.index.write() = e.libs.index();
    }

    /// Takes in replicated library changes unless a script holds the VM.
    fn try_sync(&self) {
        if self.incoming.lock().is_some() {
            if let Some(mut e) = self.vm.try_lock() {
                self.sync(&mut e);
            }
        }
    }

    /// Whether committed library changes wait to be taken in (the index may be behind).
    pub fn functions_pending(&self) -> bool {
        self.incoming.lock().is_some()
    }

    /// The flags of function `name` (any case) as last taken in, if it exists; never waits
    /// or loads anything (dispatch reads it on the reactor thread).
    pub fn function_flags(&self, name: &[u8]) -> Option<ScriptFlags> {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.index.read().functions.get(&name).copied()
    }

    /// (libraries, functions) loaded, for FUNCTION STATS.
    pub fn function_counts(&self) -> (usize, usize) {
        self.try_sync();
        let i = self.index.read();
        (i.libraries, i.functions.len())
    }

    /// The running function: its name, its caller's command and how long it has run (ms).
    pub fn running_function(&self) -> Option<(String, Vec<Bytes>, u64)> {
        let f = self.busy.function.lock().clone()?;
        Some((f.0, f.1, self.busy_ms().unwrap_or(0)))
    }

    /// The payload of the loaded libraries (FUNCTION DUMP).
    pub fn functions_payload(&self) -> Vec<u8> {
        let mut e = self.vm.lock();
        self.sync(&mut e);
        e.libs.payload.clone()
    }

    /// The libraries whose name matches `pattern` (a case-insensitive glob), by name.
    pub fn libraries(&self, pattern: Option<&[u8]>) -> Vec<LibraryView> {
        let mut e = self.vm.lock();
        self.sync(&mut e);
        e.libs
            .libs
            .values()
            .filter(|l| pattern.is_none_or(|p| crate::glob::glob_match(p, l.name.as_bytes(), true)))
            .map(|l| LibraryView {
                name: l.name.clone(),
                code: l.code.clone(),
                functions: l
                    .functions
                    .values()
                    .map(|f| FunctionView {
                        name: f.name.clone(),
                        description: f.description.clone(),
                        flags: f.flags,
                    })
                    .collect(),
            })
            .collect()
    }

    /// FCALL or FCALL_RO. Waits for the VM as [`Scripts::run`] does.
    pub fn call_function(
        &self,
        call: FunctionCall<'_>,
        host: &mut dyn Host,
        patience: super::Patience,
    ) -> Result<Reply, super::Contended> {
        let mut e = match self.engines(patience) {
            Ok(e) => e,
            Err(w) => return w.into_result(),
        };
        self.sync(&mut e);
        let name = String::from_utf8_lossy(call.name);
        let Some(def) = e.libs.find(&name) else {
            return Ok(Reply::Error("ERR Function not found".into()));
        };
        let (f, flags, name) = (def.f.clone(), def.flags, def.name.clone());
        if call.read_only && !flags.no_writes {
            return Ok(Reply::Error(RO_WITH_WRITES.into()));
        }
        if let Err(err) = host.begin(flags) {
            return Ok(Reply::Error(err));
        }
        let running = Some((name.clone(), call.command.to_vec()));
        let (keys, args) = (call.keys, call.args);
        let r = self.running(running, || {
            e.func.run(&f, Call::Function { keys, args }, host)
        });
        Ok(super::outcome(r, &name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unloadable_stored_libraries_are_kept_until_flushed() {
        let scripts = Scripts::new().unwrap();
        let lib = b"#!lua name=a\nserver.register_function('f', function() return 1 end)";
        // A record whose library no longer loads (here: it registers nothing).
        let record = crate::rdb::functions_payload([&b"#!lua name=gone\nlocal x = 1"[..]]);
        assert!(scripts.load_stored(&record).is_err());
        let mut stored = Vec::new();
        let mut store = |p: Vec<u8>| {
            stored.push(p);
            Ok(())
        };
        let load = Change::Load {
            code: lib,
            replace: false,
        };
        let refused = scripts.change_functions(load, &mut store).unwrap_err();
        assert!(refused.contains("do not load"), "{refused}");
        assert_eq!(scripts.functions_payload(), record, "DUMP keeps the record");
        scripts.change_functions(Change::Flush, &mut store).unwrap();
        let load = Change::Load {
            code: lib,
            replace: false,
        };
        assert_eq!(
            scripts
                .change_functions(load, &mut store)
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0], crate::rdb::functions_payload([]));
        assert!(scripts.function_flags(b"F").is_some());
    }

    #[test]
    fn metadata_follows_valkey() {
        assert_eq!(
            metadata(b"#!lua name=lib1\nx").unwrap(),
            ("lib1".into(), 15)
        );
        assert_eq!(metadata(b"#!LUA   \"name=a_b\" \nx").unwrap().0, "a_b");
        let err = |c: &[u8]| metadata(c).unwrap_err();
        assert_eq!(err(b"return 1"), "ERR Missing library metadata");
        assert_eq!(err(b"#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(err(b"#!lua name=\"x\n"), "ERR Invalid library metadata");
        assert_eq!(
            err(b"#!lua foo=bar\n"),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            err(b"#!lua name=a name=b\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(err(b"#!lua\n"), "ERR Library name was not given");
        assert!(err(b"#!lua name=a-b\n").starts_with("ERR Library names can only"));
        assert_eq!(err(b"#!py name=a\n"), "ERR Engine 'py' not found");
        assert_eq!(err(b"#! name=a\n"), "ERR Engine '' not found");
    }
}
