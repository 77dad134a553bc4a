//! The command table: one row per command, Valkey's arity, flags and key positions.

use super::{info, introspect, keys, server_cmds as srv, strings, CommandSpec};

macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:literal, $first:expr, $last:expr, $step:expr,
     $acl:literal, $group:literal, $since:literal, $summary:literal, $h:expr) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            acl: $acl,
            group: $group,
            since: $since,
            summary: $summary,
            handler: Some($h),
            subcommands: &[],
        }
    };
}

macro_rules! container {
    ($name:literal, $flags:literal, $acl:literal, $group:literal, $since:literal, $summary:literal,
     $h:expr, [$($sub:expr),* $(,)?]) => {
        CommandSpec {
            name: $name,
            arity: -2,
            flags: $flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl: $acl,
            group: $group,
            since: $since,
            summary: $summary,
            handler: Some($h),
            subcommands: &[$($sub),*],
        }
    };
}

pub static TABLE: &[CommandSpec] = &[
    // connection
    cmd!("ping", -1, "fast stale loading", 0, 0, 0, "@fast @connection", "connection", "1.0.0", "Returns the server's liveliness response.", srv::ping),
    cmd!("echo", 2, "fast loading stale", 0, 0, 0, "@fast @connection", "connection", "1.0.0", "Returns the given string.", srv::echo),
    cmd!("auth", -2, "noscript loading stale fast no_auth allow_busy", 0, 0, 0, "@fast @connection", "connection", "1.0.0", "Authenticates the connection.", srv::auth),
    cmd!("hello", -1, "noscript loading stale fast no_auth allow_busy", 0, 0, 0, "@fast @connection", "connection", "6.0.0", "Handshakes with the server.", srv::hello),
    cmd!("select", 2, "loading stale fast", 0, 0, 0, "@fast @connection", "connection", "1.0.0", "Changes the selected database.", srv::select),
    cmd!("quit", -1, "noscript loading stale fast no_auth allow_busy", 0, 0, 0, "@fast @connection", "connection", "1.0.0", "Closes the connection.", srv::quit),
    cmd!("reset", 1, "noscript loading stale fast no_auth allow_busy", 0, 0, 0, "@fast @connection", "connection", "6.2.0", "Resets the connection.", srv::reset),
    container!("client", "", "@slow @connection", "connection", "2.4.0", "A container for client connection commands.", srv::client, [
        cmd!("id", 2, "noscript loading stale", 0, 0, 0, "@slow @connection", "connection", "5.0.0", "Returns the unique client ID of the connection.", srv::client),
        cmd!("setname", 3, "noscript loading stale", 0, 0, 0, "@slow @connection", "connection", "2.6.9", "Sets the connection name.", srv::client),
        cmd!("getname", 2, "noscript loading stale", 0, 0, 0, "@slow @connection", "connection", "2.6.9", "Returns the name of the connection.", srv::client),
        cmd!("setinfo", 4, "noscript loading stale", 0, 0, 0, "@slow @connection", "connection", "7.2.0", "Sets information specific to the client or connection.", srv::client),
        cmd!("list", -2, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous @connection", "connection", "2.4.0", "Lists open connections.", srv::client),
        cmd!("info", 2, "noscript loading stale", 0, 0, 0, "@slow @connection", "connection", "6.2.0", "Returns information about the connection.", srv::client),
        cmd!("kill", -3, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous @connection", "connection", "2.4.0", "Terminates open connections.", srv::client),
        cmd!("no-evict", 3, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous @connection", "connection", "7.0.0", "Sets the client eviction mode of the connection.", srv::client),
        cmd!("no-touch", 3, "noscript loading stale", 0, 0, 0, "@slow @connection", "connection", "7.2.0", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", srv::client),
        cmd!("help", 2, "loading stale", 0, 0, 0, "@slow @connection", "connection", "5.0.0", "Returns helpful text about the different subcommands.", srv::client),
    ]),
    // server
    container!("command", "loading stale", "@slow @connection", "server", "2.8.13", "Returns detailed information about all commands.", introspect::command, [
        cmd!("count", 2, "loading stale", 0, 0, 0, "@slow @connection", "server", "2.8.13", "Returns a count of commands.", introspect::command),
        cmd!("docs", -2, "loading stale", 0, 0, 0, "@slow @connection", "server", "7.0.0", "Returns documentary information about one, multiple or all commands.", introspect::command),
        cmd!("getkeys", -3, "loading stale", 0, 0, 0, "@slow @connection", "server", "2.8.13", "Extracts the key names from an arbitrary command.", introspect::command),
        cmd!("getkeysandflags", -3, "loading stale", 0, 0, 0, "@slow @connection", "server", "7.0.0", "Extracts the key names and access flags for an arbitrary command.", introspect::command),
        cmd!("info", -2, "loading stale", 0, 0, 0, "@slow @connection", "server", "2.8.13", "Returns information about one, multiple or all commands.", introspect::command),
        cmd!("list", -2, "loading stale", 0, 0, 0, "@slow @connection", "server", "7.0.0", "Returns a list of command names.", introspect::command),
        cmd!("help", 2, "loading stale", 0, 0, 0, "@slow @connection", "server", "5.0.0", "Returns helpful text about the different subcommands.", introspect::command),
    ]),
    cmd!("info", -1, "loading stale", 0, 0, 0, "@slow @dangerous", "server", "1.0.0", "Returns information and statistics about the server.", info::info),
    cmd!("dbsize", 1, "readonly fast", 0, 0, 0, "@keyspace @read @fast", "server", "1.0.0", "Returns the number of keys in the database.", srv::dbsize),
    cmd!("flushdb", -1, "write", 0, 0, 0, "@keyspace @write @slow @dangerous", "server", "1.0.0", "Removes all keys from the current database.", srv::flushall),
    cmd!("flushall", -1, "write", 0, 0, 0, "@keyspace @write @slow @dangerous", "server", "1.0.0", "Removes all keys from all databases.", srv::flushall),
    container!("config", "", "@slow", "server", "2.0.0", "A container for server configuration commands.", srv::config, [
        cmd!("get", -3, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous", "server", "2.0.0", "Returns the effective values of configuration parameters.", srv::config),
        cmd!("set", -4, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous", "server", "2.0.0", "Sets configuration parameters in-flight.", srv::config),
        cmd!("rewrite", 2, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous", "server", "2.8.0", "Persists the effective configuration to file.", srv::config),
        cmd!("resetstat", 2, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous", "server", "2.0.0", "Resets the server's statistics.", srv::config),
        cmd!("help", 2, "loading stale", 0, 0, 0, "@slow", "server", "5.0.0", "Returns helpful text about the different subcommands.", srv::config),
    ]),
    cmd!("time", 1, "loading stale fast", 0, 0, 0, "@fast", "server", "2.6.0", "Returns the server time.", srv::time),
    cmd!("shutdown", -1, "admin noscript loading stale no_multi allow_busy", 0, 0, 0, "@admin @slow @dangerous", "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the server.", srv::shutdown),
    cmd!("debug", -2, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous", "server", "1.0.0", "A container for debugging commands.", srv::debug),
    // strings
    cmd!("get", 2, "readonly fast", 1, 1, 1, "@read @string @fast", "string", "1.0.0", "Returns the string value of a key.", strings::get),
    cmd!("set", -3, "write denyoom", 1, 1, 1, "@write @string @slow", "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", strings::set),
    cmd!("setnx", 3, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", strings::setnx),
    cmd!("setex", 4, "write denyoom", 1, 1, 1, "@write @string @slow", "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", strings::setex),
    cmd!("psetex", 4, "write denyoom", 1, 1, 1, "@write @string @slow", "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key.", strings::psetex),
    cmd!("mget", -2, "readonly fast", 1, -1, 1, "@read @string @fast", "string", "1.0.0", "Atomically returns the string values of one or more keys.", strings::mget),
    cmd!("mset", -3, "write denyoom", 1, -1, 2, "@write @string @slow", "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", strings::mset),
    cmd!("msetnx", -3, "write denyoom", 1, -1, 2, "@write @string @slow", "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::msetnx),
    cmd!("incr", 2, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "1.0.0", "Increments the integer value of a key by one.", strings::incr),
    cmd!("decr", 2, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "1.0.0", "Decrements the integer value of a key by one.", strings::decr),
    cmd!("incrby", 3, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "1.0.0", "Increments the integer value of a key by a number.", strings::incrby),
    cmd!("decrby", 3, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "1.0.0", "Decrements a number from the integer value of a key.", strings::decrby),
    cmd!("incrbyfloat", 3, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "2.6.0", "Increment the floating point value of a key by a number.", strings::incrbyfloat),
    cmd!("append", 3, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", strings::append),
    cmd!("strlen", 2, "readonly fast", 1, 1, 1, "@read @string @fast", "string", "2.2.0", "Returns the length of a string value.", strings::strlen),
    cmd!("getrange", 4, "readonly", 1, 1, 1, "@read @string @slow", "string", "2.4.0", "Returns a substring of the string stored at a key.", strings::getrange),
    cmd!("setrange", 4, "write denyoom", 1, 1, 1, "@write @string @slow", "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", strings::setrange),
    cmd!("getdel", 2, "write fast", 1, 1, 1, "@write @string @fast", "string", "6.2.0", "Returns the string value of a key after deleting the key.", strings::getdel),
    cmd!("getex", -2, "write fast", 1, 1, 1, "@write @string @fast", "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", strings::getex),
    cmd!("getset", 3, "write denyoom fast", 1, 1, 1, "@write @string @fast", "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", strings::getset),
    // keys
    cmd!("del", -2, "write", 1, -1, 1, "@keyspace @write @slow", "generic", "1.0.0", "Deletes one or more keys.", keys::del),
    cmd!("unlink", -2, "write fast", 1, -1, 1, "@keyspace @write @fast", "generic", "4.0.0", "Asynchronously deletes one or more keys.", keys::del),
    cmd!("exists", -2, "readonly fast", 1, -1, 1, "@keyspace @read @fast", "generic", "1.0.0", "Determines whether one or more keys exist.", keys::exists),
    cmd!("touch", -2, "readonly fast", 1, -1, 1, "@keyspace @read @fast", "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::touch),
    cmd!("type", 2, "readonly fast", 1, 1, 1, "@keyspace @read @fast", "generic", "1.0.0", "Determines the type of value stored at a key.", keys::type_),
    cmd!("expire", -3, "write fast", 1, 1, 1, "@keyspace @write @fast", "generic", "1.0.0", "Sets the expiration time of a key in seconds.", keys::expire),
    cmd!("pexpire", -3, "write fast", 1, 1, 1, "@keyspace @write @fast", "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", keys::pexpire),
    cmd!("expireat", -3, "write fast", 1, 1, 1, "@keyspace @write @fast", "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", keys::expireat),
    cmd!("pexpireat", -3, "write fast", 1, 1, 1, "@keyspace @write @fast", "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", keys::pexpireat),
    cmd!("ttl", 2, "readonly fast", 1, 1, 1, "@keyspace @read @fast", "generic", "1.0.0", "Returns the expiration time in seconds of a key.", keys::ttl),
    cmd!("pttl", 2, "readonly fast", 1, 1, 1, "@keyspace @read @fast", "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", keys::pttl),
    cmd!("expiretime", 2, "readonly fast", 1, 1, 1, "@keyspace @read @fast", "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", keys::expiretime),
    cmd!("pexpiretime", 2, "readonly fast", 1, 1, 1, "@keyspace @read @fast", "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", keys::pexpiretime),
    cmd!("persist", 2, "write fast", 1, 1, 1, "@keyspace @write @fast", "generic", "2.2.0", "Removes the expiration time of a key.", keys::persist),
    cmd!("rename", 3, "write", 1, 2, 1, "@keyspace @write @slow", "generic", "1.0.0", "Renames a key and overwrites the destination.", keys::rename),
    cmd!("renamenx", 3, "write fast", 1, 2, 1, "@keyspace @write @fast", "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    cmd!("scan", -2, "readonly", 0, 0, 0, "@keyspace @read @slow", "generic", "2.8.0", "Iterates over the key names in the database.", keys::scan),
    cmd!("keys", 2, "readonly", 0, 0, 0, "@keyspace @read @slow @dangerous", "generic", "1.0.0", "Returns all key names that match a pattern.", keys::keys),
    cmd!("randomkey", 1, "readonly", 0, 0, 0, "@keyspace @read @slow", "generic", "1.0.0", "Returns a random key name from the database.", keys::randomkey),
    cmd!("dump", 2, "readonly", 1, 1, 1, "@keyspace @read @slow", "generic", "2.6.0", "Returns a serialized representation of the value stored at a key.", keys::dump),
    cmd!("restore", -4, "write denyoom", 1, 1, 1, "@keyspace @write @slow @dangerous", "generic", "2.6.0", "Creates a key from the serialized representation of a value.", keys::restore),
    container!("object", "", "@slow", "generic", "2.2.3", "A container for object introspection commands.", keys::object, [
        cmd!("encoding", 3, "readonly", 2, 2, 1, "@keyspace @read @slow", "generic", "2.2.3", "Returns the internal encoding of an object.", keys::object),
        cmd!("refcount", 3, "readonly", 2, 2, 1, "@keyspace @read @slow", "generic", "2.2.3", "Returns the reference count of a value of a key.", keys::object),
        cmd!("idletime", 3, "readonly", 2, 2, 1, "@keyspace @read @slow", "generic", "2.2.3", "Returns the time since the last access to an object.", keys::object),
        cmd!("freq", 3, "readonly", 2, 2, 1, "@keyspace @read @slow", "generic", "4.0.0", "Returns the logarithmic access frequency counter of an object.", keys::object),
        cmd!("help", 2, "loading stale", 0, 0, 0, "@keyspace @slow", "generic", "6.2.0", "Returns helpful text about the different subcommands.", keys::object),
    ]),
];
