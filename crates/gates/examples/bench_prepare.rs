//! Throughput of `prepare` (and of `prepare` + the allowlist `check`) over a corpus of gate
//! argvs in every form the rules distinguish. Run with
//! `cargo run --release -p issueloop-gates --example bench_prepare`.

use std::hint::black_box;
use std::time::Instant;

use issueloop_gates::{DefaultGroups, RepoFacts, check, prepare};

const CORPUS: &[&str] = &[
    "pytest",
    "pytest -p no:cacheprovider -q tests/test_api.py::test_create",
    "ruff check --no-cache --force-exclude src/app/models.py src/app/views.py",
    "mypy --no-incremental --cache-dir=/dev/null src/app/models.py",
    "python -m pytest -x",
    "python3 -m compileall -q src/app/models.py src/app/views.py src/app/urls.py",
    "uv run pytest",
    "uv run --locked --group dev pytest -p no:cacheprovider",
    "uv run --frozen --extra dev pytest",
    "uv run --group=dev --package api -p3.12 pytest -q",
    "uv run -p 3.12 --with rich --env-file .env.test -- python -m pytest --locked",
    "uv -q --directory services/api run --only-group lint ruff check .",
    "uv run --all-groups --no-default-groups -m pytest",
    "uv run --no-dev pytest",
    "uv run --isolated --managed-python --no-progress --color never pytest -q -x --maxfail 3",
    "cargo test --locked",
    "npm test",
    "uv pip install requests",
];

fn main() {
    let corpus: Vec<Vec<String>> = CORPUS
        .iter()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .collect();
    let facts = [
        RepoFacts {
            pyproject: true,
            dev_group: true,
            uv_lock: true,
            ..RepoFacts::default()
        },
        RepoFacts {
            pyproject: true,
            dev_extra: true,
            uv_lock: true,
            default_groups: DefaultGroups::List(vec!["lint".into()]),
            ..RepoFacts::default()
        },
        RepoFacts::default(),
    ];
    let rules = issueloop_config::builtin_policy().allowlist;

    // Warm up, then measure.
    for argv in &corpus {
        for f in &facts {
            let _ = black_box(prepare(argv, f));
        }
    }
    let rounds = 20_000;
    let n = (rounds * corpus.len() * facts.len()) as f64;

    let start = Instant::now();
    for _ in 0..rounds {
        for argv in &corpus {
            for f in &facts {
                let _ = black_box(prepare(black_box(argv), f));
            }
        }
    }
    let prepare_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..rounds {
        for argv in &corpus {
            for f in &facts {
                if let Ok(p) = prepare(black_box(argv), f) {
                    black_box(check(&p, &rules));
                }
            }
        }
    }
    let both_secs = start.elapsed().as_secs_f64();

    println!(
        "corpus: {} argvs x {} repository kinds, {rounds} rounds ({n} calls)",
        corpus.len(),
        facts.len()
    );
    println!(
        "prepare:         {:>10.0} argvs/s  {:>6.3} µs/argv",
        n / prepare_secs,
        prepare_secs * 1e6 / n
    );
    println!(
        "prepare + check: {:>10.0} argvs/s  {:>6.3} µs/argv",
        n / both_secs,
        both_secs * 1e6 / n
    );
}
