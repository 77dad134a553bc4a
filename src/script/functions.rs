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

/// Splits a shebang line as Valkey's `sdssplitargs` does (quotes, escapes); `None` when a
/// quote is unbalanced.
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(&c) = line.get(i) else {
                if quote.is_some() {
                    return None;
                }
                break;
            };
            match quote {
                Some(q) if c == q => {
                    i += 1;
                    if line.get(i).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return None;
                    }
                    break;
                }
                Some(b'"') if c == b'\\' && i + 1 < line.len() => {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                }
                Some(_) => cur.push(c),
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c.is_ascii_whitespace() => break,
                None => cur.push(c),
            }
            i += 1;
        }
        out.push(cur);
    }
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
    let parts = split_args(&code[..end])
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
        if timeout {
            busy.load_deadline_ms
                .store(now_ms() + LOAD_TIMEOUT_MS, Ordering::Release);
        }
        self.loading.call::<()>(true).map_err(lua_err)?;
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
                let text: Vec<String> = args.iter().skip(1).map(convert::lua_display).collect();
                tracing::info!("{}", text.join(" "));
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
        busy.load_deadline_ms.store(0, Ordering::Release);
        self.loading.call::<()>(false).map_err(lua_err)?;
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
        let mut next = Libraries {
            libs: e.libs.libs.clone(),
            payload: Vec::new(),
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
        let libs = Libraries::from_payload(&e.func, payload, &self.busy)?;
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
            Ok(Libraries::default().sealed())
        } else {
            Libraries::from_payload(&e.func, &payload, &self.busy)
        };
        match libs {
            Ok(libs) => {
                *self.index.write() = libs.index();
                e.libs = libs;
            }
            Err(err) => tracing::error!("replicated function libraries do not load: {err}"),
        }
    }

    /// Takes in replicated library changes unless a script holds the VM.
    fn try_sync(&self) {
        if self.incoming.lock().is_some() {
            if let Some(mut e) = self.vm.try_lock() {
                self.sync(&mut e);
            }
        }
    }

    /// Takes in replicated library changes now (waits for the VM when there are some).
    pub fn refresh_functions(&self) {
        if self.incoming.lock().is_some() {
            let mut e = self.vm.lock();
            self.sync(&mut e);
        }
    }

    /// The flags of function `name` (any case), if it exists. Replicated changes are taken in
    /// first unless a script holds the VM (never waits).
    pub fn function_flags(&self, name: &[u8]) -> Option<ScriptFlags> {
        self.try_sync();
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

    /// FCALL: runs function `name` with `keys` and `args`; `command` is the caller's (FUNCTION
    /// STATS shows it). Waits for the VM as [`Scripts::run`] does.
    pub fn call_function(
        &self,
        name: &[u8],
        keys: &[Bytes],
        args: &[Bytes],
        host: &mut dyn Host,
        patience: Option<std::time::Duration>,
        command: &[Bytes],
    ) -> Reply {
        let mut e = match self.engines(patience) {
            Ok(e) => e,
            Err(busy) => return busy,
        };
        self.sync(&mut e);
        let name = String::from_utf8_lossy(name);
        let Some(def) = e.libs.find(&name) else {
            return Reply::Error("ERR Function not found".into());
        };
        let (f, flags, name) = (def.f.clone(), def.flags, def.name.clone());
        if let Err(err) = host.begin(flags) {
            return Reply::Error(err);
        }
        let running = Some((name.clone(), command.to_vec()));
        let r = self.running(running, || {
            e.func.run(&f, Call::Function { keys, args }, host)
        });
        super::outcome(r, &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
