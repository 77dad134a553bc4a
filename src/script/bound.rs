//! The host functions of the `redis`/`server` library (`call`, `pcall`, `setresp`, `log`,
//! `acl_check_cmd`), created once per VM and bound to the running script through [`Current`].
//!
//! Creating them per run (an mlua scope) cost about a third of a short script's time.
//! Must not: be reachable from outside a run: with no script running they raise an error.

use std::cell::RefCell;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use mlua::{Lua, MultiValue, Table};

use super::{convert, log_args, Run};
use crate::resp::Reply;

/// The running script's [`Run`], which the host functions reach; null between runs.
#[derive(Clone, Default)]
pub(super) struct Current(Arc<AtomicPtr<()>>);

/// Clears [`Current`] when the run ends, however it ends.
pub(super) struct Binding<'c>(&'c Current);

impl Drop for Binding<'_> {
    fn drop(&mut self) {
        self.0 .0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

impl Current {
    /// Points the host functions at `run` until the returned binding drops.
    pub(super) fn bind<'c>(&'c self, run: &RefCell<Run<'_>>) -> Binding<'c> {
        let p = run as *const RefCell<Run<'_>> as *mut ();
        self.0.store(p, Ordering::Release);
        Binding(self)
    }

    fn with<R>(&self, f: impl FnOnce(&RefCell<Run<'_>>) -> mlua::Result<R>) -> mlua::Result<R> {
        let p = self.0.load(Ordering::Acquire);
        if p.is_null() {
            return Err(mlua::Error::runtime("no script is running"));
        }
        // SAFETY: `p` was stored by `bind` from a `RefCell<Run>` that outlives its `Binding`,
        // and the binding nulls it before that run's frame ends. Host functions only execute
        // inside the VM's own call, which `Vm::run` makes while holding the binding, and the
        // VM is behind the engines' mutex, so no other thread runs it meanwhile. `f` cannot
        // keep the reference (it is higher-ranked over both lifetimes).
        #[allow(unsafe_code)]
        let run = unsafe { &*(p as *const RefCell<Run<'_>>) };
        f(run)
    }
}

/// Sets the host functions on `library` (the table behind `redis` and `server`).
pub(super) fn install(lua: &Lua, current: &Current, library: &Table) -> mlua::Result<()> {
    for (name, raise) in [("call", true), ("pcall", false)] {
        let cur = current.clone();
        let f = lua.create_function(move |lua, args: MultiValue| {
            cur.with(|run| {
                let resp3 = run.borrow().resp3;
                let reply = match convert::command_args(lua, &args) {
                    Ok(args) => run.borrow_mut().host.call(args, resp3),
                    Err(e) => Reply::Error(e),
                };
                match reply {
                    Reply::Error(e) if raise => Err(convert::raise(&e)),
                    reply => convert::reply_to_lua(lua, &reply, resp3),
                }
            })
        })?;
        library.raw_set(name, f)?;
    }
    let cur = current.clone();
    let setresp = lua.create_function(move |_, v: MultiValue| {
        cur.with(|run| {
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
        })
    })?;
    library.raw_set("setresp", setresp)?;
    let cur = current.clone();
    let log = lua.create_function(move |_, args: MultiValue| {
        let (level, text) = log_args(&args)?;
        cur.with(|run| {
            run.borrow_mut().host.log(level, &text);
            Ok(())
        })
    })?;
    library.raw_set("log", log)?;
    let cur = current.clone();
    let acl = lua.create_function(move |lua, args: MultiValue| {
        let args = convert::command_args(lua, &args).map_err(|_| {
            mlua::Error::runtime("Invalid command passed to server.acl_check_cmd()")
        })?;
        cur.with(|run| {
            run.borrow_mut().host.may_run(&args).ok_or_else(|| {
                mlua::Error::runtime("Invalid command passed to server.acl_check_cmd()")
            })
        })
    })?;
    library.raw_set("acl_check_cmd", acl)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Host, ScriptFlags};
    use bytes::Bytes;

    struct Echo;
    impl Host for Echo {
        fn call(&mut self, args: Vec<Bytes>, _resp3: bool) -> Reply {
            Reply::Int(args.len() as i64)
        }
        fn log(&mut self, _level: i64, _msg: &str) {}
        fn begin(&mut self, _flags: ScriptFlags) -> Result<(), String> {
            Ok(())
        }
        fn may_run(&mut self, _args: &[Bytes]) -> Option<bool> {
            Some(true)
        }
    }

    #[test]
    fn host_functions_reach_only_the_running_script() {
        let lua = Lua::new();
        let current = Current::default();
        let library = lua.create_table().unwrap();
        install(&lua, &current, &library).unwrap();
        let call: mlua::Function = library.get("call").unwrap();
        let unbound = call.call::<i64>(("ping", "x")).unwrap_err().to_string();
        assert!(unbound.contains("no script is running"), "{unbound}");
        let mut host = Echo;
        {
            let run = RefCell::new(Run {
                host: &mut host,
                resp3: false,
            });
            let _binding = current.bind(&run);
            assert_eq!(call.call::<i64>(("ping", "x")).unwrap(), 2);
        }
        let after = call.call::<i64>(("ping",)).unwrap_err().to_string();
        assert!(after.contains("no script is running"), "{after}");
    }
}
