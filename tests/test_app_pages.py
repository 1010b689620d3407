"""Every page of the workbench, driven through Streamlit's AppTest with widgets set by key.

What a person must be able to do: see the zoo, pick a model (zoo, saved folder), see samples from fixed latents
and re-sample, read the card, measure metrics in the background, start and cancel a job, compare runs and read
failures as messages (never tracebacks).
"""

from __future__ import annotations

import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from jobs_harness import curve_job
from core.data import load
from core.errors import LetheError
from core.models import load_model, save_bundle
from core.runs import RunStore, run_now
from core.zoo.registry import ZOO, zoo_folder

SHIPPED = [n for n in ZOO if (zoo_folder(n) / "model.safetensors").is_file()]
TOYS = ("gaussian2d", "ring5", "clusters6", "normal1d")
# Explore is checked for one shipped model of each family on images and on toys, choosing models whose data loads
# at once (synthfaces renders for up to a minute, full Fashion-MNIST takes seconds).
QUICK = list({(ZOO[n].family, ZOO[n].dataset in TOYS): n for n in reversed(SHIPPED)
              if ZOO[n].dataset in ("mnist", *TOYS)}.values())


@pytest.fixture
def app_test(monkeypatch):
    """Builds AppTests of app.py that run like the real server (see app_harness)."""
    return app_test_factory(monkeypatch)


def test_overview_lists_every_zoo_model_with_its_measured_quality(app_test):
    at = app_test().run()
    assert_clean(at)
    table = at.table[0].value
    assert list(table["model"]) == list(ZOO)
    for name in SHIPPED:
        row = table[table["model"] == name].iloc[0]
        assert row["quality measured at training"] != "not trained yet" and row["floors met"] == "yes"
    assert len(at.sidebar.caption) and "Runs are stored in" in at.sidebar.caption[-1].value


@pytest.mark.parametrize("name", QUICK)
def test_explore_shows_fixed_latent_samples_and_resamples(app_test, name):
    at = pick_zoo(app_test().run(), name)
    at.switch_page("pages/explore.py").run()
    assert_clean(at)
    assert at.title[0].value == f"Explore · {name}"
    bundle = load_model(name, "cpu")
    two_d = len(bundle.data_shape) == 1
    assert (len(at.get("plotly_chart")) if two_d else len(at.get("image"))) > 0
    at.button(key="explore_resample").click().run()
    assert_clean(at)
    assert at.number_input(key="explore_seed").value == 1
    if bundle.family == "flow":
        at.slider(key="explore_temperature").set_value(0.5).run()
        assert_clean(at)
    if getattr(bundle, "conditional", False):
        at.selectbox(key="explore_class").select_index(2).run()  # the options are "any class", then each class
        assert_clean(at)


@pytest.mark.parametrize("name", [n for n in ("mnist-lenet", "mnist-acgan") if n in SHIPPED])
def test_explore_model_card_shows_measured_metrics_against_floors(app_test, name):
    at = pick_zoo(app_test().run(), name)
    at.switch_page("pages/explore.py").run()
    card = at.dataframe[0].value.set_index("metric")
    model = load_model(name, "cpu").card
    for metric, (op, bound) in model.floors.items():
        assert card.loc[metric, "floor"] == f"{op} {bound}"
        assert bool(card.loc[metric, "meets floor"]) == (not model.floor_failures()), metric


def test_explore_measures_metrics_in_a_background_run(app_test):
    at = pick_zoo(app_test().run(), "mnist-lenet")
    at.switch_page("pages/explore.py").run()
    at.button(key="explore_measure").click().run()
    assert_clean(at)
    run_id = at.session_state["explore_eval_runs"]["mnist-lenet"]
    from core.runs import shared_runner

    assert shared_runner().wait(run_id, timeout=120).status == "succeeded"
    at.run()
    assert_clean(at)
    assert any("succeeded" in m.value for m in at.markdown)
    measured = at.dataframe[-1].value
    assert float(measured[measured["metric"] == "accuracy"]["value"].iloc[0]) >= 0.97


def test_a_saved_model_folder_loads_from_the_sidebar(app_test, tmp_path):
    bundle = load_model("mnist-lenet", "cpu").copy()
    bundle.card.name = "my-lenet"
    save_bundle(bundle, tmp_path / "my-lenet")
    at = app_test().run()
    at.radio(key="pick_source").set_value("Folder").run()
    at.text_input(key="pick_path").input(str(tmp_path / "my-lenet")).run()
    assert_clean(at)
    assert at.session_state["model_spec"] == str(tmp_path / "my-lenet")
    assert any("my-lenet" in c.value for c in at.sidebar.caption)


def test_a_broken_model_folder_is_a_message_with_a_hint_not_a_traceback(app_test, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "card.json").write_text("{not json")
    at = app_test().run()
    at.radio(key="pick_source").set_value("Folder").run()
    at.text_input(key="pick_path").input(str(tmp_path / "broken")).run()
    assert_clean(at)
    assert [e.value for e in at.error if "not valid JSON" in e.value] != []
    assert len(at.error) == 1  # reported once, in the sidebar; the page asks for another model
    at.text_input(key="pick_path").input(str(tmp_path / "nowhere")).run()
    assert len(at.error) == 1 and "There is no saved model folder" in at.error[0].value
    assert "python -m core" not in at.error[0].value  # app advice, not command-line advice


def test_runs_page_starts_a_job_and_cancels_it(app_test):
    at = app_test().run().switch_page("pages/runs.py").run()
    assert_clean(at)
    at.selectbox(key="runs_job_recipe").set_value("mnist-lenet")
    at.toggle(key="runs_job_smoke").set_value(False).run()  # a full recipe runs long enough to cancel
    at.button(key="runs_job_start").click().run()
    assert_clean(at)
    run_id = at.session_state["runs_inspect"]
    at.run()
    cancel = [b for b in at.button if b.key == f"runs_live_cancel_{run_id}"]
    assert cancel, "a running job shows a cancel button"
    cancel[0].click().run()
    from core.runs import shared_runner

    assert shared_runner().wait(run_id, timeout=120).status == "cancelled"
    at.run()
    assert_clean(at)
    assert at.dataframe[0].value.set_index("id").loc[run_id, "status"] == "cancelled"


def _failing_job(progress, cancel):
    raise LetheError("The forget set is empty.", "Pick at least one sample on the Data page.")


def test_runs_page_compares_runs_offers_downloads_and_explains_failures(app_test):
    store = RunStore()
    for scale in (1.0, 2.0):
        run_now(curve_job(scale), method="demo", model="mnist-lenet", store=store)
    failed = run_now(_failing_job, method="demo", model="mnist-lenet", store=store)
    at = app_test().run().switch_page("pages/runs.py").run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 3
    at.selectbox(key="runs_inspect").set_value(failed.id).run()
    assert any("The forget set is empty." in e.value and "Pick at least one sample" in e.value for e in at.error)
    ok_ids = [i for i in store.ids() if i != failed.id]
    at.multiselect(key="runs_compare").set_value(ok_ids).run()
    assert_clean(at)
    compared = at.dataframe[-1].value
    assert sorted(compared["final_loss"]) == pytest.approx([1 / 3, 2 / 3])
    assert all(row.startswith("demo mnist-lenet · ") for row in compared["run"])  # named in words, not by id
    panels = [c for c in at.get("plotly_chart") if c.key == "runs_compare_curves"]
    assert len(panels) == 1 and '"text":"loss"' in panels[0].proto.spec.replace(" ", "")  # one panel per metric
    at.selectbox(key="runs_inspect").set_value(ok_ids[0]).run()
    labels = [d.proto.label for d in at.get("download_button")]
    assert {"Metrics (.json)", "Metrics (.csv)", "Events (.csv)", "Config (.json)"} <= set(labels)


def test_data_page_defaults_to_the_models_training_data(app_test):
    at = pick_zoo(app_test().run(), "mnist-lenet")
    at.switch_page("pages/data.py").run()
    assert_clean(at)
    assert at.selectbox(key="data_name").value == "mnist"
    gallery = [c for c in at.checkbox if c.key and c.key.startswith("pick::mnist::")]
    assert len(gallery) == 48
    first_ids = load("mnist", "train").ids[:48].tolist()
    assert [int(c.key.rsplit("::", 1)[1]) for c in gallery] == first_ids


def test_explore_shows_class_shares_of_a_generator_judged_by_the_domain_classifier(app_test):
    generators = [n for n in QUICK if ZOO[n].family in ("gan", "flow") and ZOO[n].dataset == "mnist"]
    if not generators or "mnist-lenet" not in SHIPPED:
        pytest.skip("needs a shipped MNIST generator and mnist-lenet")
    at = pick_zoo(app_test().run(), generators[0])
    at.switch_page("pages/explore.py").run()
    assert_clean(at)
    charts = [c for c in at.get("plotly_chart") if "judged by mnist-lenet" in c.proto.spec]
    assert len(charts) == 1
