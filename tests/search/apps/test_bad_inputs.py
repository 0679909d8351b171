"""The bad-input matrix: each bad input, given to the real CLI next to a stored study, gets one
line naming the field and the value, exit code 2, no traceback, and leaves every stored file as
it was. docs/bad-inputs.md is this table with the messages the CLI really printed; a test keeps
it in step (`python -m tests.search.apps.test_bad_inputs` rewrites it).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import space
from search.apps.search import main as search_main
from tests.search.conftest import DIGITS, FOREIGN_HARDWARE, REPO, run_cli_in_process, search_env, this_machine

DOC = REPO / "docs" / "bad-inputs.md"
SECRET = "s3cret-pw"
STUDY = [
    "data=synthetic",
    "data.n_samples=256",
    "train.epochs=1",
    "search.n_trials=3",
    "logger=none",
    "progress=false",
    "study.name=keep",
]


@dataclass(frozen=True)
class Case:
    name: str
    overrides: Callable[[Path], list[str]]
    names: str  # the field=value the message must name


def _write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _invalid_genotype(tmp: Path) -> Path:
    text = space.io.dump(space.preset("googlenet-small"), tmp / "ok.yaml").read_text()
    return _write(tmp / "invalid.yaml", text.replace("c1: 64", "c1: -8", 1))


def _foreign_latency_table(tmp: Path) -> Path:
    from space.latency import LatencyTable, Setting

    return LatencyTable(setting=Setting(), hardware=FOREIGN_HARDWARE).save(tmp / "h200-table.json")


def _a_file(tmp: Path) -> Path:
    return _write(tmp / "a-file", "not a folder")


CASES = [
    Case(
        "malformed genotype file (YAML syntax)",
        lambda t: [f"space.base={_write(t / 'malformed.yaml', 'stem: [unclosed')}"],
        "space.base=",
    ),
    Case("invalid genotype file (negative width)", lambda t: [f"space.base={_invalid_genotype(t)}"], "c1=-8"),
    Case("genotype file that does not exist", lambda t: [f"space.base={t / 'missing.yaml'}"], "space.base="),
    Case("unknown preset", lambda t: ["space.base=googlenet-huge"], "space.base='googlenet-huge'"),
    Case("budget below the smallest network", lambda t: ["budget.macs=1000"], "budget.macs=1000"),
    Case("zero epochs", lambda t: ["train.epochs=0"], "train.epochs=0"),
    Case("negative epochs", lambda t: ["train.epochs=-3"], "train.epochs=-3"),
    Case("epochs not a number", lambda t: ["train.epochs=ten"], "train.epochs"),
    Case("misspelled key", lambda t: ["trian.epochs=3"], "trian"),
    Case("unknown sampler", lambda t: ["search.sampler=bayes"], "search.sampler='bayes'"),
    Case("unknown search strategy", lambda t: ["search.strategy=oneshot"], "search.strategy='oneshot'"),
    Case(
        "supernet search confirming more than it trains",
        lambda t: ["search.strategy=supernet", "search.train_top_k=2", "search.confirm.top_k=3"],
        "search.confirm.top_k=3: exceeds search.train_top_k=2",
    ),
    Case(
        "confirmation at a lower fidelity than the search",
        lambda t: ["train.epochs=2", "search.confirm.top_k=1", "search.confirm.epochs=1"],
        "search.confirm.epochs=1: below train.epochs=2",
    ),
    Case(
        "confirmation with the search's own seed",
        lambda t: ["search.confirm.top_k=3", "search.confirm.seeds=[0,1]"],
        "search.confirm.seeds=[0, 1]",
    ),
    Case("validation larger than the data", lambda t: ["data.val_size=5000"], "data.val_size=5000"),
    Case("unknown data set", lambda t: ["data=imagenet"], "data=imagenet"),
    Case(
        "image folder that is not a class-per-folder tree",
        lambda t: ["data=folder", f"data.path={(t / 'flat-images').mkdir(exist_ok=True) or t / 'flat-images'}"],
        "data.path=",
    ),
    Case("a field of another data source", lambda t: ["data=digits", "data.path=digits.npz"], "data.path"),
    Case(
        "conflicting options: grace period without heartbeats",
        lambda t: ["search.heartbeat_interval=null", "search.grace_period=60"],
        "search.grace_period=60",
    ),
    Case(
        "conflicting options: no training data left",
        lambda t: ["data.val_fraction=0.6", "data.test_fraction=0.5"],
        "data.test_fraction=0.5",
    ),
    Case("zero workers", lambda t: ["search.n_workers=0"], "search.n_workers=0"),
    Case("missing data file", lambda t: ["data=npz", f"data.path={t / 'nope.npz'}"], "data.path="),
    Case(
        "corrupt data file",
        lambda t: ["data=npz", f"data.path={_write(t / 'corrupt.npz', bytes(range(256)) * 8)}"],
        "data.path=",
    ),
    Case(
        "CIFAR-10 folder without its batches",
        lambda t: ["data=cifar10", f"data.path={(t / 'empty-cifar').mkdir(exist_ok=True) or t / 'empty-cifar'}"],
        "data.path=",
    ),
    Case("storage URL that is not a URL", lambda t: ["search.storage=study.db"], "search.storage='study.db'"),
    Case(
        "unreachable storage (password in URL)",
        lambda t: [f"search.storage=postgresql+psycopg://nas:{SECRET}@127.0.0.1:9/nas"],
        "search.storage=",
    ),
    Case(
        "unwritable results directory", lambda t: [f"study.results_dir={_a_file(t) / 'results'}"], "study.results_dir="
    ),
    Case(
        "W&B directory that cannot be written",
        lambda t: ["logger=wandb", f"logger.dir={_a_file(t) / 'wandb'}"],
        "logger.dir=",
    ),
    Case("resuming a study with a different config", lambda t: ["train.lr=0.5"], "train.lr=0.5"),
    Case(
        "search.params: not a sweep expression",
        lambda t: ["search.params={train.lr:'interval(0.1'}"],
        "search.params.train.lr='interval(0.1'",
    ),
    Case(
        "search.params: a value the field refuses",
        lambda t: ["+search.params={train.momentum:'interval(0.5, 1.5)'}"],
        "search.params.train.momentum=",
    ),
    Case(
        "search.params: a key that defines the study",
        lambda t: ["+search.params={data.subset:'choice(100, 200)'}"],
        "search.params.data.subset=",
    ),
    Case("latency budget of zero", lambda t: ["budget.latency_ms=0"], "budget.latency_ms=0"),
    Case(
        "latency table fitted on another machine",
        lambda t: ["budget.latency_ms=2", f"budget.latency_table={_foreign_latency_table(t)}"],
        "budget.latency_table=",
    ),
    Case(
        "resuming a study under other search.params",
        lambda t: ["search.params={train.lr:'tag(log, interval(0.01, 0.5))'}"],
        "search.params.train.lr=",
    ),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every stored file's hash (search.log is appended to by each attempt, by design)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "search.log"
    }


def _run(case: Case, tmp: Path) -> subprocess.CompletedProcess:
    overrides = case.overrides(tmp)
    study = STUDY
    if any(o.startswith("data=") for o in overrides):  # another source: synthetic's own fields go
        study = [a for a in STUDY if not a.startswith("data.n_samples")]
    return run_cli_in_process(search_main, [*DIGITS, *study, *overrides], tmp)


def run_matrix(tmp: Path) -> tuple[dict[str, str], list[tuple[Case, subprocess.CompletedProcess]]]:
    """Store a study with the real CLI, then try every bad input next to it. Each bad input runs
    `python -m search`'s main() in this process (its parsing and checks are the subject, not a
    new interpreter's start-up); tests/search/config/test_config.py runs bad inputs through a
    real process too."""
    stored = subprocess.run(
        [sys.executable, "-m", "search", *DIGITS, *STUDY], cwd=tmp, env=search_env(), capture_output=True, text=True
    )
    assert stored.returncode == 0, stored.stderr
    before = _snapshot(tmp / "results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        results = [(case, _run(case, tmp)) for case in CASES]
    return before, results


def _message(proc: subprocess.CompletedProcess, tmp: Path) -> str:
    """The printed line with the test's folder and the running machine's hardware string (CPU
    model, core count, torch version: it names the latency table's machine) as placeholders, so
    the table reads the same on every machine."""
    return proc.stderr.strip().replace(str(tmp), "<tmp>").replace(this_machine(), "<this machine>")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("bad")
    before, results = run_matrix(tmp)
    return tmp, before, results


def test_at_least_fifteen_bad_inputs() -> None:
    assert len(CASES) >= 15 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_stored_results_survive(matrix, index: int) -> None:
    tmp, before, results = matrix
    case, proc = results[index]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert case.names in lines[0], lines[0]
    assert SECRET not in proc.stderr + proc.stdout
    after = _snapshot(tmp / "results")
    assert {k: after.get(k) for k in before} == before  # nothing stored changed or went away


@pytest.mark.slow
def test_docs_table_shows_the_messages_the_cli_prints(matrix) -> None:
    tmp, _, results = matrix
    doc = DOC.read_text()
    for case, proc in results:
        row = (
            f"| {case.name} | `{' '.join(case.overrides(tmp)).replace(str(tmp), '<tmp>')}` | `{_message(proc, tmp)}` |"
        )
        assert row in doc, f"docs/bad-inputs.md is out of date (python -m tests.search.apps.test_bad_inputs):\n{row}"


def write_doc() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _, results = run_matrix(tmp)
        rows = [
            f"| {case.name} | `{' '.join(case.overrides(tmp)).replace(str(tmp), '<tmp>')}` | `{_message(proc, tmp)}` |"
            for case, proc in results
        ]
    header = [
        "# Bad inputs and what they get",
        "",
        "Each row was run through `python -m search` next to a stored study (`study.name=keep`, the",
        "overrides shown added to a small synthetic search). Every one exits with code 2, prints one",
        "line on stderr naming the field and the value, shows no traceback, and leaves every stored",
        "file of the study byte-for-byte as it was (`tests/search/apps/test_bad_inputs.py` checks all of",
        "this, and that this table matches what the CLI prints). `<tmp>` stands for the test's folder,",
        "`<this machine>` for the running machine's hardware string (processor or GPU, cores, torch).",
        "Credentials in storage URLs are masked (`***`) in every message, log and report.",
        "",
        "| bad input | overrides | message |",
        "|---|---|---|",
    ]
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("\n".join(header + rows) + "\n")
    print(f"wrote {DOC} ({len(rows)} rows)")


if __name__ == "__main__":
    write_doc()
