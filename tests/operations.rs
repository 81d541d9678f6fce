//! Operating the module: the example config, `make install`, eviction warnings, ACL categories.

mod common;

use common::*;
use testkit::{is_valkey, module_path, workspace_root, RedisServer};

fn server_log(server: &RedisServer) -> String {
    std::fs::read_to_string(server.dir().join("server.log")).unwrap()
}

#[test]
fn redis_conf_example_starts_a_server_with_the_module_configured() {
    let example = std::fs::read_to_string(workspace_root().join("redis.conf.example")).unwrap();
    let installed = "/usr/local/lib/redis/modules/libredis_dedup.so";
    assert!(example.contains(installed), "the example loads the module from the install prefix");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, example.replace(installed, &module_path().to_string_lossy())).unwrap();
    let server = RedisServer::config().without_module().config_file(&conf).start();
    let con = &mut server.connection();

    let get = |con: &mut redis::Connection, name: &str| -> String {
        let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con).unwrap();
        pair.get(1).cloned().unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(get(con, "dedup.max-ttl-ms"), "2592000000");
    assert_eq!(get(con, "dedup.max-result-bytes"), "65536");
    assert_eq!(get(con, "maxmemory-policy"), "noeviction");
    assert_eq!(get(con, "appendonly"), "yes");
    assert_eq!(get(con, "appendfsync"), "always");
    assert_eq!(get(con, "aof-use-rdb-preamble"), "yes");
    assert!(matches!(claim(con, b"k", 1000, &owner("me"), None), Reply::Claimed { .. }));
    assert!(!server_log(&server).contains("maxmemory-policy is"), "no eviction warning for the example");
}

#[test]
fn make_install_copies_the_module_to_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("modules");
    let status = std::process::Command::new("make")
        .arg("-s")
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("MODULE={}", module_path().display()))
        .current_dir(workspace_root())
        .status()
        .expect("run make");
    assert!(status.success());
    let installed = std::fs::read(prefix.join("libredis_dedup.so")).unwrap();
    assert_eq!(installed, std::fs::read(module_path()).unwrap());
}

#[test]
fn evicting_policies_are_warned_about_at_load_and_on_config_set() {
    let server = RedisServer::config().setting("maxmemory-policy", "allkeys-lru").start();
    assert!(server_log(&server).contains("maxmemory-policy is allkeys-lru"));
    let con = &mut server.connection();
    redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("volatile-ttl").exec(con).unwrap();
    redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction").exec(con).unwrap();
    let log = server_log(&server);
    assert!(log.contains("maxmemory-policy is volatile-ttl"));
    assert_eq!(log.matches("maxmemory-policy is").count(), 2, "noeviction is not warned about");
}

#[test]
fn load_line_names_version_and_settings() {
    let server = RedisServer::config().module_arg("max-ttl-ms", "60000").start();
    let log = server_log(&server);
    let line = log.lines().find(|l| l.contains("redis-dedup") && l.contains("loaded")).expect("load line");
    assert!(line.contains(env!("CARGO_PKG_VERSION")));
    assert!(line.contains("max-ttl-ms=60000"));
}

#[test]
fn out_of_memory_refuses_new_claims_and_keeps_what_is_stored() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let me = owner("me");
    claim(con, b"held", 60_000, &me, None);
    redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1").exec(con).unwrap();
    assert!(err(con, &[b"DEDUP.CLAIM", b"new", b"1000", &me]).starts_with("OOM"));
    assert!(err(con, &[b"DEDUP.COMPLETE", b"held", b"1000", &me]).starts_with("OOM"));
    // Commands that free or keep memory still work, and the stored lease is intact.
    assert!(matches!(status(con, b"held"), Reply::StatusClaimed { .. }));
    assert!(flag(con, &[b"DEDUP.EXTEND", b"held", b"60000", &me]));
    assert!(flag(con, &[b"DEDUP.RELEASE", b"held", &me]));
}

/// Logs in as a user allowed `commands` on `webhook:*` keys only, and checks both limits hold.
fn only_webhook_keys_for(con: &mut redis::Connection, commands: &str) {
    redis::cmd("ACL").arg("SETUSER").arg("worker").arg("on").arg("nopass").arg("~webhook:*").arg(commands).exec(con).unwrap();
    redis::cmd("AUTH").arg("worker").arg("any").exec(con).unwrap();
    assert!(matches!(claim(con, b"webhook:1", 1000, &owner("w"), None), Reply::Claimed { .. }));
    assert!(err(con, &[b"DEDUP.CLAIM", b"other:1", b"1000", &owner("w")]).starts_with("NOPERM"));
}

#[test]
fn commands_belong_to_the_dedup_acl_category_where_the_server_supports_it() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let listed: redis::RedisResult<Vec<String>> = redis::cmd("ACL").arg("CAT").arg("dedup").query(con);
    if is_valkey() {
        let mut listed = listed.expect("Valkey supports module ACL categories");
        listed.sort();
        assert_eq!(
            listed,
            ["dedup.claim", "dedup.complete", "dedup.extend", "dedup.fence", "dedup.put", "dedup.release", "dedup.status"]
        );
        only_webhook_keys_for(con, "+@dedup");
    } else {
        // Redis 7.0 has no module ACL categories: the module still loads and says so in its log.
        assert!(listed.is_err());
        assert!(server_log(&server).contains("does not support adding new ACL categories"));
        // Key patterns apply all the same, through the command's key positions.
        only_webhook_keys_for(con, "+dedup.claim");
    }
}

#[test]
fn command_docs_describe_every_command_and_arity_is_checked_by_the_server() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let expected_arity = [
        ("dedup.claim", -4),
        ("dedup.extend", 4),
        ("dedup.release", 3),
        ("dedup.complete", -4),
        ("dedup.fence", 4),
        ("dedup.status", 2),
        ("dedup.put", -5),
    ];
    for (name, arity) in expected_arity {
        let info = items(redis::cmd("COMMAND").arg("INFO").arg(name).query::<redis::Value>(con).unwrap());
        let cmd = items(info.into_iter().next().unwrap());
        assert_eq!(int(&cmd[1]), arity, "{name} arity");
        let docs: redis::Value = redis::cmd("COMMAND").arg("DOCS").arg(name).query(con).unwrap();
        let text = format!("{docs:?}");
        for field in ["summary", "complexity", "O(1)", "arguments", "key"] {
            assert!(text.contains(field), "{name} docs lack {field}: {text}");
        }
    }
    // Redis itself now refuses a wrong argument count, with its standard message.
    let e = err(con, &[b"DEDUP.RELEASE", b"k"]);
    assert_eq!(e, "ERR wrong number of arguments for 'dedup.release' command");
}
