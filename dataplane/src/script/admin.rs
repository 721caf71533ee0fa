//! SCRIPT and FUNCTION: the node-wide script cache and function libraries, answered on the
//! connection's shard (the registry is node-wide; other shards pick changes up by
//! generation, see the module header).

use std::sync::atomic::Ordering;

use super::vm::{valid_name, Mode, Vm};
use super::{flags, library_metadata, load_library, lock, Engine, FunctionInfo, Library, Shared};
use crate::cache::glob::glob_match;
use crate::proto::resp::errors::{self, unknown_subcommand, unknown_subcommand_short};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

const SCRIPT_HELP: &[&str] = &[
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

fn help(command: &str, lines: &[&str], out: &mut Out) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// A subcommand's arity (Redis convention) by name, for the container command's checks.
fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= (-arity) as usize
    }
}

/// Look the subcommand up: its lowercase name, or the reply Redis gives for an unknown one
/// or a wrong number of arguments.
fn subcommand(
    command: &str,
    table: &[(&'static str, i32)],
    a: &Args,
    out: &mut Out,
) -> Option<&'static str> {
    let sub = a.get(1).to_ascii_lowercase();
    let Some((name, arity)) = table.iter().find(|(n, _)| n.as_bytes() == sub.as_slice()) else {
        out.error(&unknown_subcommand_short(a.get(1), command));
        return None;
    };
    if !arity_ok(*arity, a.len()) {
        out.error(&errors::wrong_args(&format!(
            "{}|{name}",
            command.to_ascii_lowercase()
        )));
        return None;
    }
    Some(name)
}

const SCRIPT_SUBCOMMANDS: &[(&str, i32)] = &[
    ("debug", 3),
    ("exists", -3),
    ("flush", -2),
    ("help", 2),
    ("kill", 2),
    ("load", 3),
];

pub fn script(e: &mut Engine, a: &Args, out: &mut Out) {
    let Some(sub) = subcommand("SCRIPT", SCRIPT_SUBCOMMANDS, a, out) else {
        return;
    };
    match sub {
        "help" => help("SCRIPT", SCRIPT_HELP, out),
        "flush" => {
            if a.len() > 3 || (a.len() == 3 && !a.eq(2, "SYNC") && !a.eq(2, "ASYNC")) {
                return out.error(errors::SCRIPT_FLUSH_OPTION);
            }
            let mut g = lock(&e.shared.scripts);
            g.clear();
            e.shared.scripts_gen.fetch_add(1, Ordering::AcqRel);
            drop(g);
            out.ok();
        }
        "exists" => {
            let g = lock(&e.shared.scripts);
            out.array(a.len() - 2);
            for i in 2..a.len() {
                let sha = String::from_utf8_lossy(a.get(i)).to_ascii_lowercase();
                out.int(g.contains_key(&sha) as i64);
            }
        }
        "load" => match e.cache_script(a.get(2)) {
            Ok(sha) => out.bulk(sha.as_bytes()),
            Err(err) => out.error(&err),
        },
        "kill" => match e.shared.kill(true) {
            Ok(()) => out.ok(),
            Err(err) => out.error(err),
        },
        _ => out.error(errors::SCRIPT_DEBUG),
    }
}

const FUNCTION_SUBCOMMANDS: &[(&str, i32)] = &[
    ("delete", 3),
    ("dump", 2),
    ("flush", -2),
    ("help", 2),
    ("kill", 2),
    ("list", -2),
    ("load", -3),
    ("restore", -3),
    ("stats", 2),
];

pub fn function(e: &mut Engine, a: &Args, out: &mut Out) {
    let Some(sub) = subcommand("FUNCTION", FUNCTION_SUBCOMMANDS, a, out) else {
        return;
    };
    let shared = &e.shared;
    match sub {
        "help" => help("FUNCTION", FUNCTION_HELP, out),
        "load" => match load(shared, a) {
            Ok(name) => out.bulk(name.as_bytes()),
            Err(err) => out.error(&err),
        },
        "delete" => {
            let mut libs = lock(&shared.libraries);
            match libs.iter().position(|l| l.name.as_bytes() == a.get(2)) {
                Some(i) => {
                    libs.remove(i);
                    shared.libraries_gen.fetch_add(1, Ordering::AcqRel);
                    out.ok();
                }
                None => out.error(errors::LIBRARY_NOT_FOUND),
            }
        }
        "flush" => {
            if a.len() > 3 {
                return out.error(&unknown_subcommand(a.get(1), "FUNCTION"));
            }
            if a.len() == 3 && !a.eq(2, "SYNC") && !a.eq(2, "ASYNC") {
                return out.error(errors::FUNCTION_FLUSH_OPTION);
            }
            let mut libs = lock(&shared.libraries);
            libs.clear();
            shared.libraries_gen.fetch_add(1, Ordering::AcqRel);
            out.ok();
        }
        "list" => list(shared, a, out),
        "kill" => match shared.kill(false) {
            Ok(()) => out.ok(),
            Err(err) => out.error(err),
        },
        "stats" => stats(shared, out),
        "dump" => out.bulk(&dump(&lock(&shared.libraries))),
        "restore" => match restore(shared, a) {
            Ok(()) => out.ok(),
            Err(err) => out.error(&err),
        },
        _ => out.error(&unknown_subcommand(a.get(1), "FUNCTION")),
    }
}

/// Load a library's code in a fresh Lua state to see what it registers.
fn compile_library(code: &[u8]) -> Result<Library, String> {
    let (engine, name, skip) = library_metadata(code)?;
    if !valid_name(name.as_bytes()) {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let vm = Vm::new(Mode::Function).map_err(|e| format!("ERR {e}"))?;
    let registered = load_library(&vm, &code[skip..])?;
    Ok(Library {
        name,
        code: code.into(),
        functions: registered
            .into_iter()
            .map(|r| FunctionInfo {
                name: r.name,
                description: r.description,
                flags: r.flags,
            })
            .collect(),
    })
}

/// Add `new` to `libs` (replacing a library of the same name when `replace`), refusing
/// name collisions as Redis does.
fn join(libs: &mut Vec<Library>, new: Vec<Library>, replace: bool) -> Result<(), String> {
    let mut next: Vec<Library> = libs.clone();
    for lib in new {
        if let Some(i) = next.iter().position(|l| l.name == lib.name) {
            if !replace {
                return Err(format!("ERR Library '{}' already exists", lib.name));
            }
            next.remove(i);
        }
        for f in &lib.functions {
            if next
                .iter()
                .flat_map(|l| &l.functions)
                .any(|g| g.name.eq_ignore_ascii_case(&f.name))
            {
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
        next.push(lib);
    }
    *libs = next;
    Ok(())
}

/// FUNCTION LOAD [REPLACE] code.
fn load(shared: &Shared, a: &Args) -> Result<String, String> {
    let mut replace = false;
    let mut i = 2;
    while i < a.len() - 1 {
        if a.eq(i, "REPLACE") {
            replace = true;
        } else {
            return Err(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(a.get(i))
            ));
        }
        i += 1;
    }
    if i >= a.len() {
        return Err(errors::FUNCTION_CODE_MISSING.into());
    }
    let code = a.get(i);
    // Held while the library loads, so two shards loading at once cannot both pass the
    // collision checks.
    let mut libs = lock(&shared.libraries);
    let (_, name, _) = library_metadata(code)?;
    if !replace && libs.iter().any(|l| l.name == name) {
        return Err(format!("ERR Library '{name}' already exists"));
    }
    let lib = compile_library(code)?;
    let name = lib.name.clone();
    join(&mut libs, vec![lib], replace)?;
    shared.libraries_gen.fetch_add(1, Ordering::AcqRel);
    Ok(name)
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn list(shared: &Shared, a: &Args, out: &mut Out) {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < a.len() {
        if !with_code && a.eq(i, "WITHCODE") {
            with_code = true;
        } else if pattern.is_none() && a.eq(i, "LIBRARYNAME") {
            if i + 1 >= a.len() {
                return out.error(errors::LIBRARY_NAME_MISSING);
            }
            pattern = Some(a.get(i + 1));
            i += 1;
        } else {
            return out.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a.get(i))
            ));
        }
        i += 1;
    }
    let libs = lock(&shared.libraries);
    let shown: Vec<&Library> = libs
        .iter()
        .filter(|l| pattern.is_none_or(|p| glob_match(p, l.name.as_bytes(), true)))
        .collect();
    out.array(shown.len());
    for lib in shown {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            out.bulk_opt(f.description.as_deref().map(str::as_bytes));
            out.bulk(b"flags");
            let names: Vec<&str> = flags::NAMES
                .iter()
                .filter(|(_, bit)| f.flags & bit != 0)
                .map(|(n, _)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
}

/// FUNCTION STATS: the function running on any shard, and the engine's counts.
fn stats(shared: &Shared, out: &mut Out) {
    let mut running = None;
    for slot in &shared.runs {
        let g = lock(&slot.running);
        if let Some(r) = g.as_ref() {
            if r.eval {
                return out.error(errors::BUSY_SCRIPT);
            }
            running = Some((
                r.name.clone(),
                r.command.clone(),
                r.started.elapsed().as_millis() as i64,
            ));
        }
    }
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some((name, command, ms)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(command.len());
            for c in &command {
                out.bulk(c);
            }
            out.bulk(b"duration_ms");
            out.int(ms);
        }
    }
    let libs = lock(&shared.libraries);
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs.len() as i64);
    out.bulk(b"functions_count");
    out.int(libs.iter().map(|l| l.functions.len()).sum::<usize>() as i64);
}

/// FUNCTION DUMP's payload (pinion's own, not Redis's RDB encoding): a magic word, each
/// library's code with its length, and a CRC32C of all that.
const DUMP_MAGIC: &[u8] = b"pinion-functions-1";

fn dump(libs: &[Library]) -> Vec<u8> {
    let mut out = DUMP_MAGIC.to_vec();
    for lib in libs {
        out.extend_from_slice(&(lib.code.len() as u32).to_le_bytes());
        out.extend_from_slice(&lib.code);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The libraries' code in a DUMP payload, or None when it is not one.
fn undump(payload: &[u8]) -> Option<Vec<&[u8]>> {
    let (body, crc) = payload.split_at_checked(payload.len().checked_sub(4)?)?;
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return None;
    }
    let mut rest = body.strip_prefix(DUMP_MAGIC)?;
    let mut codes = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_at_checked(4)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let (code, tail) = tail.split_at_checked(len)?;
        codes.push(code);
        rest = tail;
    }
    Some(codes)
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE].
fn restore(shared: &Shared, a: &Args) -> Result<(), String> {
    if a.len() > 4 {
        return Err(unknown_subcommand(a.get(1), "FUNCTION"));
    }
    let policy = if a.len() == 4 {
        let p = a.get(3).to_ascii_uppercase();
        match p.as_slice() {
            b"APPEND" | b"REPLACE" | b"FLUSH" => p,
            _ => return Err(errors::FUNCTION_RESTORE_POLICY.into()),
        }
    } else {
        b"APPEND".to_vec()
    };
    let codes = undump(a.get(2)).ok_or(errors::FUNCTION_PAYLOAD)?;
    let mut libs = lock(&shared.libraries);
    let new = codes
        .into_iter()
        .map(compile_library)
        .collect::<Result<Vec<_>, _>>()?;
    if policy == b"FLUSH" {
        let mut fresh = Vec::new();
        join(&mut fresh, new, false)?;
        *libs = fresh;
    } else {
        join(&mut libs, new, policy == b"REPLACE")?;
    }
    shared.libraries_gen.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_round_trips_and_rejects_damage() {
        let libs = vec![Library {
            name: "a".into(),
            code: b"#!lua name=a\nredis.register_function('f', function() end)"
                .as_slice()
                .into(),
            functions: Vec::new(),
        }];
        let d = dump(&libs);
        assert_eq!(undump(&d).unwrap(), vec![&libs[0].code[..]]);
        let mut bad = d.clone();
        bad[20] ^= 1;
        assert!(undump(&bad).is_none());
        assert!(undump(b"").is_none());
        assert!(undump(&d[..d.len() - 1]).is_none());
    }
}
