"""`python -m core sweep FILE`: a checked grid of method runs, each written to the run store as the verb would,
tagged with the sweep's id; a bad file is refused with a clear message before any job starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main
from core.cli.sweep import MAX_JOBS, SweepJob, check_jobs, expand, parse_grid, read_file
from core.cli.methods import MethodCall
from core.errors import Cancelled, LetheError
from core.progress import CancelToken, ProgressEvent
from core.runs import RunStore
from core.runs.sweeps import members, sweep_runs, sweep_table

TINY = {"name": "tiny taming", "method": "tame", "model": "toy-flow", "forget": "label=0",
        "params": {"max-iterations": [1, 2], "eval-samples": 32, "eval-size": 32}, "seeds": 0}


def _file(tmp_path: Path, doc, name: str = "sweep.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def _refused(doc) -> str:
    with pytest.raises(LetheError) as err:
        check_jobs(expand(parse_grid(doc)))
    return err.value.message


def test_the_grid_is_every_combination_of_the_axes_with_one_flag_word_per_value():
    grid = parse_grid({**TINY, "params": {"delta": [1.0, 2.5], "verify": True, "lr": 0.001}, "seeds": [0, 1]})
    jobs = expand(grid)
    assert grid.size == len(jobs) == 4 and grid.axes() == ["delta", "seed"]
    assert jobs[3].argv == ("tame", "toy-flow", "--forget=label=0", "--delta=2.5", "--verify", "--lr=0.001",
                            "--seed=1")
    assert dict(jobs[3].point) == {"delta": 2.5, "seed": 1}


@pytest.mark.parametrize("doc, message", [
    ({**TINY, "learning_rate": 1}, "unknown key in the sweep file: learning_rate"),
    ({**TINY, "seeds": []}, "`seeds` is an empty list: the grid has no jobs"),
    ({**TINY, "params": {"delta": list(range(1, MAX_JOBS + 2))}}, f"a sweep runs at most {MAX_JOBS}"),
    ({**TINY, "method": "forget-everything"}, "unknown method verb 'forget-everything'"),
    ({**TINY, "params": {"not-a-flag": 3}}, "unrecognized arguments: --not-a-flag=3"),
    ({**TINY, "params": {"delta": -1}}, "--delta"),
    ({**TINY, "params": {"runs-dir": "/tmp"}}, "`params` cannot set 'runs-dir'"),
    ({**TINY, "params": {"trust-factory": "os"}}, "`params` cannot set 'trust-factory'"),
    ({**TINY, "params": {"delta": {"nested": 1}}}, "`delta` holds {'nested': 1}"),
    ({**TINY, "seeds": [True]}, "`seeds` holds True"),
    ({**TINY, "model": "no-such-model"}, "'no-such-model' names no zoo model"),
    ({**TINY, "model": "toy-gan"}, "tame works on flow models; toy-gan is a gan"),
    ({k: v for k, v in TINY.items() if k != "model"}, "the sweep file has no `model`"),
])
def test_a_bad_sweep_file_is_refused_with_what_to_fix(doc, message):
    assert message in _refused(doc)


def test_a_value_never_becomes_another_flag():
    job = expand(parse_grid({**TINY, "forget": "--runs-dir=/etc"}))[0]
    assert "--forget=--runs-dir=/etc" in job.argv  # one word: the forget spec, however it reads


def test_hostile_yaml_is_read_as_data_or_refused(tmp_path):
    evil = _file(tmp_path, "method: !!python/object/apply:os.system ['touch pwned']\nmodel: toy-flow\n", "evil.yaml")
    with pytest.raises(LetheError, match="cannot read the sweep file"):
        read_file(evil)
    assert not Path("pwned").exists()
    with pytest.raises(LetheError, match="cannot read the sweep file"):  # nesting deeper than the parser's stack
        read_file(_file(tmp_path, "a: " + "[" * 5000 + "]" * 5000, "deep.yaml"))
    with pytest.raises(LetheError, match="holds a list, not a mapping"):
        read_file(_file(tmp_path, "- tame\n- toy-flow\n", "list.yaml"))
    assert read_file(_file(tmp_path, "method: tame\nmodel: toy-flow\nseeds: [0, 1]\n", "ok.yml"))["seeds"] == [0, 1]


def test_the_cli_refuses_a_bad_file_before_any_run_exists(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["sweep", _file(tmp_path, {**TINY, "params": {"delta": 0}}), "--runs-dir", str(runs), "--json"])
    assert code == 2 and "--delta" in capsys.readouterr().err
    assert RunStore(runs).ids() == []


def test_a_dry_run_lists_the_jobs_and_starts_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["sweep", _file(tmp_path, TINY), "--dry-run", "--runs-dir", str(runs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [j["command"] for j in result["jobs"]] == [
        f"python -m core tame toy-flow --forget=label=0 --max-iterations={k} --eval-samples=32 --eval-size=32 "
        "--seed=0" for k in (1, 2)]
    assert RunStore(runs).ids() == []


def test_a_cancelled_sweep_starts_no_further_job_and_stops_the_running_ones(tmp_path):
    flag = tmp_path / "cancel.request"
    job = SweepJob(3, expand(parse_grid(TINY))[0].argv, (("delta", 2.0),), sweep="S", cancel_flag=str(flag))

    def method_job(progress, cancel):  # a method's job: reports a step, then checks its token
        for step in range(1, 4):
            progress(ProgressEvent(step, 3))
            if step == 1:
                flag.touch()  # the sweep is cancelled while this job runs
            cancel.raise_if_set()

    call = job._tag(MethodCall(params={"lr": 0.1}, job=method_job))
    assert call.params == {"lr": 0.1, "sweep": "S", "sweep_index": 3, "sweep_point": {"delta": 2.0}}
    with pytest.raises(Cancelled):
        call.job(lambda event: None, CancelToken())
    assert job()["status"] == "cancelled"  # a job handed out after the cancel does not start


@pytest.mark.slow
def test_a_two_job_sweep_runs_on_two_workers_and_tags_each_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["sweep", _file(tmp_path, TINY), "--workers", "2", "--runs-dir", str(runs), "--device", "cpu",
                 "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, result
    store = RunStore(runs)
    [sweep] = sweep_runs(store)
    assert result["sweep"] == sweep.id and sweep.status == "succeeded"
    assert sweep.metrics == {"jobs": 2, "succeeded": 2, "failed": 0, "cancelled": 0}
    runs_of = members(store, sweep.id)
    assert [r.config["params"]["max_iterations"] for r in runs_of] == [1, 2]
    assert all(r.config["method"] == "tame" and r.config["seed"] == 0 and r.status == "succeeded" for r in runs_of)
    assert all(len(r.event_records()) > 0 for r in runs_of)  # each job reported its progress into its own run
    table = sweep_table(store, sweep.id)
    assert list(table["max-iterations"]) == [1, 2] and list(table["run"]) == [r.id for r in runs_of]
    assert len(sweep.event_records()) == 2  # the sweep's own events: one per finished job
