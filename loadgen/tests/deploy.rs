//! `deploy/` cannot run here (no container engine, no cluster), so this
//! keeps it true another way: it reads the Kubernetes manifests, renders
//! each container's command with the service names and the Job's index
//! replaced by local values, and runs those very commands as local
//! processes: a real `redis-server`, the server Deployment's replicas (one
//! port shared with `--reuse-port`, as the Service shares one address),
//! and the Indexed Job's shards, whose printed results are merged with
//! `loadgen merge`, as the README tells a user to do with `kubectl logs`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every document of every `deploy/k8s/*.yaml`.
fn manifests() -> Vec<Yaml> {
    let mut docs = Vec::new();
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        docs.extend(
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
        );
    }
    docs
}

fn find<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} `{name}` in deploy/k8s"))
}

/// The first container of a Deployment's or a Job's pod template.
fn container(workload: &Yaml) -> &Yaml {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

/// Its command and args, as the kubelet would run them.
fn argv(c: &Yaml) -> Vec<String> {
    let list = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .map(|v| {
                v.iter()
                    .map(|s| s.as_str().expect("a string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut a = list(&c["command"]);
    a.extend(list(&c["args"]));
    a
}

fn env(c: &Yaml) -> BTreeMap<String, String> {
    c["env"]
        .as_vec()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().into(),
                        e["value"].as_str().unwrap().into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces every `from` with its `to`, in each argument.
fn render(argv: &[String], subst: &[(String, String)]) -> Vec<String> {
    argv.iter()
        .map(|a| {
            subst
                .iter()
                .fold(a.clone(), |a, (from, to)| a.replace(from, to))
        })
        .collect()
}

/// Children killed when the test ends, however it ends.
#[derive(Default)]
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `server` binary beside this test's `loadgen` (built if missing).
fn server_binary() -> PathBuf {
    let loadgen = Path::new(env!("CARGO_BIN_EXE_loadgen"));
    let server = loadgen.with_file_name("server");
    let release = loadgen.components().any(|c| c.as_os_str() == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "server", "--bin", "server"]);
    if release {
        build.arg("--release");
    }
    let status = build.current_dir(repo()).status().expect("running cargo");
    assert!(
        status.success() && server.exists(),
        "building the server binary"
    );
    server
}

/// A directory whose `server` and `loadgen` are this build's, for PATH.
fn bin_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(server_binary(), dir.join("server")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_loadgen"), dir.join("loadgen")).unwrap();
    dir
}

async fn get(addr: &str, path: &str) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.ok()?;
    serde_json::from_str(body.split_once("\r\n\r\n")?.1).ok()
}

#[tokio::test]
async fn the_manifests_commands_run_locally_and_their_results_merge() {
    let docs = manifests();
    let containerfile = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    for bin in ["target/release/server", "target/release/loadgen"] {
        assert!(containerfile.contains(bin), "the image ships {bin}");
    }
    let job = find(&docs, "Job", "loadgen");
    assert_eq!(job["spec"]["completionMode"].as_str(), Some("Indexed"));
    for (kind, name) in [("Service", "redis"), ("Service", "feed-server")] {
        find(&docs, kind, name);
    }
    if !server::redis_process::RedisProcess::available() {
        assert_ne!(
            std::env::var("WORKBENCH_REQUIRE_REDIS").as_deref(),
            Ok("1"),
            "redis-server is required (install: apt-get install -y redis-server)"
        );
        // Straight to stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the manifests' commands need redis-server (install: apt-get install -y redis-server)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir(tmp.path());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (redis_port, http_port) = (free_port(), free_port());
    let service = format!("127.0.0.1:{http_port}");
    let subst: Vec<(String, String)> = vec![
        ("redis:6379".into(), format!("127.0.0.1:{redis_port}")),
        ("0.0.0.0:8080".into(), service.clone()),
        ("feed-server:8080".into(), service.clone()),
    ];
    let mut procs = Processes::default();

    // Redis, with a local port, address and directory.
    let redis = render(&argv(container(find(&docs, "Deployment", "redis"))), &subst);
    procs.0.push(
        Command::new(&redis[0])
            .args(&redis[1..])
            .args([
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
            ])
            .arg(tmp.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );

    // The server Deployment's replicas, sharing the Service's port.
    let deployment = find(&docs, "Deployment", "feed-server");
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap();
    assert!(replicas >= 2, "a shared feed needs several replicas");
    let server = render(&argv(container(deployment)), &subst);
    for r in 0..replicas {
        let log = std::fs::File::create(tmp.path().join(format!("server-{r}.log"))).unwrap();
        procs.0.push(
            Command::new(&server[0])
                .args(&server[1..])
                .env("PATH", &path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("a server replica starts"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = get(&service, "/stats").await;
        if read
            .as_ref()
            .and_then(|s| s["broker"]["last_id_read"].as_u64())
            > Some(0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas never served the feed: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The Job's pods: its env with small local numbers, the index set.
    let c = container(job);
    let shards = job["spec"]["completions"].as_i64().unwrap();
    let mut job_env = env(c);
    assert_eq!(
        job_env["SHARDS"],
        shards.to_string(),
        "SHARDS must match completions"
    );
    let start = std::time::SystemTime::now() + Duration::from_secs(8);
    job_env.insert(
        "START_AT".into(),
        humantime::format_rfc3339_seconds(start).to_string(),
    );
    job_env.insert("CONNECTIONS".into(), "30".into());
    job_env.insert("DURATION".into(), "3s".into());
    let mut pods = Vec::new();
    for i in 0..shards {
        let pod = tmp.path().join(format!("pod-{i}"));
        std::fs::create_dir_all(&pod).unwrap();
        let mut local = subst.clone();
        local.push(("/tmp/".into(), format!("{}/", pod.display())));
        let cmd = render(&argv(c), &local);
        let run = tokio::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .envs(&job_env)
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("PATH", &path)
            .kill_on_drop(true)
            .output();
        pods.push(tokio::time::timeout(Duration::from_secs(90), run));
    }
    // `kubectl logs` of each pod is its result.json.
    let mut collected = Vec::new();
    for (i, out) in futures_util::future::join_all(pods)
        .await
        .into_iter()
        .enumerate()
    {
        let out = out.expect("the shard finishes").expect("the shard runs");
        let log = std::fs::read_to_string(tmp.path().join(format!("pod-{i}/loadgen.log")))
            .unwrap_or_default();
        assert!(out.status.success(), "shard {i} failed: {log}");
        let dir = tmp.path().join(format!("logs/shard-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("result.json"), &out.stdout).unwrap();
        collected.push(dir);
    }
    let merged_dir = tmp.path().join("merged");
    let merge = Command::new(bin.join("loadgen"))
        .arg("merge")
        .args(&collected)
        .arg("--out")
        .arg(&merged_dir)
        .output()
        .unwrap();
    assert!(
        merge.status.success(),
        "{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged_dir.join("result.json")).unwrap())
            .unwrap();
    assert_eq!(merged["complete"], true, "{}", merged["problems"]);
    let wire = &merged["scenarios"][0]["wires"][0];
    assert_eq!(wire["connections"], 30);
    assert_eq!(wire["opened"], 30);
    assert_eq!(wire["lost"], 0);
    assert_eq!(wire["duplicates"], 0);
    assert_eq!(wire["processes"], shards);
    assert!(wire["events_in_hold"].as_u64() >= Some(30 * 2), "{wire}");
}
