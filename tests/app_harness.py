"""Helpers shared by the AppTest files: build the app and run it the way the real server does.

The real server switches the process to `st.navigation` the first time app.py runs (and pages call
`require_app_shell` for a first visit that lands on a deep link). AppTest instead resets Streamlit's
"this app has a pages/ folder" flag before every run, which would run each page without app.py and drop button
clicks in the extra rerun; `app_test` keeps the flag off, as it is in a running server.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120


def app_test_factory(monkeypatch):
    """A factory of AppTests of app.py, run with st.navigation as the server runs it (use it in a fixture)."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    return lambda: AppTest.from_file(APP, default_timeout=TIMEOUT)


def assert_clean(at: AppTest) -> None:
    """No exception element and no "went wrong inside Lethe" message: every error is a LetheError message."""
    assert not at.exception, [e.value for e in at.exception]
    bugs = [e.value for e in at.error if "went wrong inside Lethe" in e.value]
    assert not bugs, bugs


def pick_zoo(at: AppTest, name: str) -> AppTest:
    """Choose zoo model `name` in the sidebar (its options are shown as "name · family")."""
    at.radio(key="pick_source").set_value("Zoo")
    box = at.selectbox(key="pick_zoo")
    return box.select_index([o.split(" · ")[0] for o in box.options].index(name)).run()
