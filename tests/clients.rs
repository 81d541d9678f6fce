//! The claim/complete flow from other languages' stock clients: redis-py and ioredis, through
//! their generic command calls. `make examples-deps` installs both (make test does).

use std::process::Command;

use testkit::{workspace_root, RedisServer};

fn run_example(program: &str, script: &str, server: &RedisServer) -> String {
    let root = workspace_root();
    // A path is relative to the workspace; a bare name is looked up on PATH.
    let program = if program.contains('/') { root.join(program) } else { program.into() };
    let out = Command::new(&program)
        .arg(root.join(script))
        .arg(server.port().to_string())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e} (run `make examples-deps`)", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn python_redis_py_example() {
    let server = RedisServer::start();
    let out = run_example("target/pyenv/bin/python", "examples/python/webhook_dedup.py", &server);
    assert!(out.contains("claim/complete flow OK"), "{out}");
}

#[test]
fn node_ioredis_example() {
    let server = RedisServer::start();
    let out = run_example("node", "examples/node/webhook_dedup.js", &server);
    assert!(out.contains("claim/complete flow OK"), "{out}");
}
