//! Benchmark: on a generated repository of 20,000 files, create a worktree and compute the
//! change facts after modifying some files, side by side with `git worktree add` and
//! `git status --porcelain=v2` on the same machine in the same run.
//!
//! `cargo run --release -p issueloop-workspace --example bench_worktree [-- FILES ROUNDS]`

#![expect(
    clippy::disallowed_types,
    reason = "a benchmark runs programs directly (git, the binary under test) to set up and observe"
)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use issueloop_config::RepoName;
use issueloop_workspace::hermetic::git_command;
use issueloop_workspace::{BaseRef, RemoteSpec, Workspace};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let remote = root.join("remote.git");
    generate(&remote, files)?;
    println!(
        "repository: {files} files in {} directories",
        files.div_ceil(200)
    );

    // Both sides start from a ready mirror: ours from a first prepare, git's from a bare clone.
    let marks: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let hook_marks = marks.clone();
    let ws =
        Workspace::new(root.join("cache")).with_checkpoint_hook(Arc::new(move |name: &str| {
            if let Ok(mut m) = hook_marks.lock() {
                m.push((name.to_owned(), Instant::now()));
            }
        }));
    let repo: RepoName = "bench/repo".parse()?;
    let spec = RemoteSpec::new(remote.to_str().ok_or("non-UTF-8 temp path")?, None);
    ws.prepare_worktree(&repo, &spec, "loop/0-warm", &BaseRef::DefaultBranch)?
        .remove()?;
    let git_mirror = root.join("git-mirror.git");
    run(git_command(root)
        .args(["clone", "-q", "--bare"])
        .arg(&remote)
        .arg(&git_mirror))?;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..rounds {
        // issueloop: prepare (fetch + branch + worktree + checkout), modify, change facts.
        let branch = format!("loop/{round}-bench");
        let started = Instant::now();
        marks.lock().map_err(|_| "poisoned")?.clear();
        let wt = ws.prepare_worktree(&repo, &spec, &branch, &BaseRef::DefaultBranch)?;
        let add = started.elapsed();
        if round == 0 {
            let m = marks.lock().map_err(|_| "poisoned")?;
            let steps: Vec<String> = m
                .iter()
                .scan(started, |prev, (name, at)| {
                    let step = at.duration_since(*prev);
                    *prev = *at;
                    Some(format!("{name} +{:.1} ms", step.as_secs_f64() * 1000.0))
                })
                .collect();
            println!("issueloop create steps (round 0): {}", steps.join(", "));
        }
        modify(wt.path(), round)?;
        let started = Instant::now();
        let facts = wt.run_change_facts()?;
        let status = started.elapsed();
        assert_eq!(facts.paths.len(), 15, "10 modified, 5 added");
        ours.push((add, status));
        wt.remove()?;

        // git: worktree add on the bare mirror, modify, status.
        let path = root.join(format!("git-wt-{round}"));
        let started = Instant::now();
        run(git_command(&git_mirror)
            .args(["worktree", "add", "-q", "-b", &branch])
            .arg(&path)
            .arg("main"))?;
        let add = started.elapsed();
        modify(&path, round)?;
        let started = Instant::now();
        let out = git_command(&path)
            .args(["status", "--porcelain=v2", "--untracked-files=all"])
            .stderr(Stdio::inherit())
            .output()?;
        let status = started.elapsed();
        assert!(out.status.success());
        assert_eq!(
            out.stdout
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            15
        );
        theirs.push((add, status));
        run(git_command(&git_mirror)
            .args(["worktree", "remove", "--force"])
            .arg(&path))?;
    }

    let (ours_add, ours_status) = medians(&ours);
    let (git_add, git_status) = medians(&theirs);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("median of {rounds} rounds        create worktree   change facts / status   total");
    println!(
        "issueloop (libgit2)        {:>12.1} ms   {:>18.1} ms   {:>8.1} ms",
        ms(ours_add),
        ms(ours_status),
        ms(ours_add + ours_status)
    );
    println!(
        "git worktree add + status  {:>12.1} ms   {:>18.1} ms   {:>8.1} ms",
        ms(git_add),
        ms(git_status),
        ms(git_add + git_status)
    );
    println!(
        "ratio (issueloop / git)    {:>12.2}x   {:>18.2}x   {:>8.2}x",
        ms(ours_add) / ms(git_add),
        ms(ours_status) / ms(git_status),
        ms(ours_add + ours_status) / ms(git_add + git_status)
    );
    Ok(())
}

/// Modify 10 tracked files and add 5 new ones.
fn modify(dir: &Path, round: usize) -> std::io::Result<()> {
    for i in 0..10 {
        let n = i * 1999 + round;
        let path = dir.join(format!("dir{:03}/f{n}.txt", n / 200));
        std::fs::write(path, format!("changed in round {round}\n"))?;
    }
    for i in 0..5 {
        std::fs::write(dir.join(format!("dir000/new{i}.txt")), "new\n")?;
    }
    Ok(())
}

fn medians(samples: &[(Duration, Duration)]) -> (Duration, Duration) {
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    (
        median(samples.iter().map(|s| s.0).collect()),
        median(samples.iter().map(|s| s.1).collect()),
    )
}

fn run(cmd: &mut std::process::Command) -> Result<(), Box<dyn std::error::Error>> {
    let out = cmd.stderr(Stdio::piped()).output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A bare repository with one commit of `files` files, 200 per directory, ~1 KiB each.
fn generate(remote: &Path, files: usize) -> Result<(), Box<dyn std::error::Error>> {
    let parent = remote.parent().ok_or("no parent")?;
    run(git_command(parent)
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(remote))?;
    let mut import = git_command(remote)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()?;
    {
        let mut stdin = std::io::BufWriter::new(import.stdin.take().ok_or("no stdin")?);
        writeln!(stdin, "commit refs/heads/main")?;
        writeln!(stdin, "committer Bench <bench@example.com> 0 +0000")?;
        writeln!(stdin, "data 4\ninit")?;
        for i in 0..files {
            let content = format!("file {i}\n{}", "lorem ipsum dolor sit amet\n".repeat(36));
            writeln!(stdin, "M 100644 inline dir{:03}/f{i}.txt", i / 200)?;
            writeln!(stdin, "data {}\n{content}", content.len())?;
        }
    }
    if !import.wait()?.success() {
        return Err("git fast-import failed".into());
    }
    Ok(())
}
