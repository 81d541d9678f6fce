//! `webhook-demo` end to end, as `make demo` runs it but smaller: real redis-servers, receiver
//! processes, SQLite and the fault.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::Rng;
use serde_json::Value;

const DEMO: &str = env!("CARGO_BIN_EXE_webhook-demo");
/// Three Redis nodes, then two receivers.
const PORTS: u16 = 5;

/// A block of free ports for one demo run.
struct Ports {
    first: u16,
}

impl Ports {
    /// Below Linux's ephemeral range (32768 and up), so that no client connection of this or any
    /// other test takes one of the ports between the check and the demo's bind.
    fn free() -> Ports {
        for _ in 0..1_000 {
            let first = rand::rng().random_range(20_000..32_000);
            if (first..first + PORTS).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
                return Ports { first };
            }
        }
        panic!("no {PORTS} consecutive free ports between 20000 and 32768");
    }

    /// The demo on these ports, with the module under test, and without any `DEDUP_DEMO_*`
    /// setting inherited from the environment.
    fn demo(&self) -> Command {
        let mut command = Command::new(DEMO);
        for (name, _) in env::vars() {
            if name.starts_with("DEDUP_DEMO_") {
                command.env_remove(name);
            }
        }
        command
            .arg(format!("--redis-port={}", self.first))
            .arg(format!("--receiver-port={}", self.first + 3))
            .arg("--module")
            .arg(testkit::module_path());
        command
    }

    fn assert_nothing_listens(&self) {
        for port in self.first..self.first + PORTS {
            assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "something still listens on port {port}");
        }
    }
}

#[test]
fn a_small_run_creates_exactly_one_record_per_event_in_dedup_mode_with_a_node_killed() {
    let ports = Ports::free();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = ports.demo().args(["--events", "200", "--json"]).arg(&json).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);

    let report: Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let dedup = &report["dedup"];
    assert_eq!(dedup["events"], 200);
    assert_eq!(dedup["audit"]["records_created"], 200, "{dedup:#}");
    assert_eq!(dedup["audit"]["duplicate_records"], 0, "{dedup:#}");
    assert_eq!(dedup["audit"]["events_without_record"], 0, "{dedup:#}");
    assert_eq!(report["passed"], true);
    assert!(stdout.contains("PASS: dedup mode created exactly one record for each of the 200 events"), "{stdout}");

    // The fault really happened: one node was killed, and came back from its AOF.
    let faults: Vec<&str> = dedup["faults"].as_array().unwrap().iter().map(|f| f["what"].as_str().unwrap()).collect();
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(faults[0].starts_with("SIGKILL redis-server"), "{faults:?}");
    assert!(faults[1].contains("restarted from its AOF"), "{faults:?}");

    // Naive mode got the same deliveries. How many duplicates it made varies from run to run.
    assert_eq!(report["naive"]["deliveries"], dedup["deliveries"]);
    ports.assert_nothing_listens();
}

#[test]
fn sigint_stops_every_process_the_demo_started_and_removes_its_files() {
    let ports = Ports::free();
    // Long enough that the run is still sending when the signal comes.
    let mut demo = ports
        .demo()
        .args(["--events", "20000", "--rate", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut narration = BufReader::new(demo.stderr.take().unwrap()).lines().map(Result::unwrap);

    // Once naive mode sends, every kind of process the demo starts is running.
    let mut work_dir = None;
    for line in narration.by_ref() {
        if let Some((_, dir)) = line.split_once(", in ") {
            work_dir = Some(PathBuf::from(dir));
        }
        if line.contains("naive:") && line.contains("receiver processes") {
            break;
        }
    }
    let work_dir = work_dir.expect("the demo names its working directory");
    assert!(work_dir.is_dir());

    kill(Pid::from_raw(demo.id() as i32), Signal::SIGINT).unwrap();
    let rest: Vec<String> = narration.collect();
    let status = demo.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:#?}");
    assert!(rest.iter().any(|line| line.contains("SIGINT: stopped every process it started")), "{rest:#?}");
    ports.assert_nothing_listens();
    assert!(!work_dir.exists(), "{} was left behind", work_dir.display());
}
