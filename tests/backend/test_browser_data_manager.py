"""In a real browser (Debian's chromium, driven by selenium): the alod tab of the Data Manager lists the
top-ranked tasks first and shows the prediction score column.

The tab is made by the same code as the `push` stage's (`view_payload`); the predictions carry the
scores the push would write. Nothing is downloaded: selenium is given /usr/bin/chromedriver.
"""

from __future__ import annotations

import shutil
import time

import pytest

from pipelines.labelstudio.project import view_payload

pytestmark = pytest.mark.slow

CHROMEDRIVER = "/usr/bin/chromedriver"
CONFIG = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="RBC"/></RectangleLabels></View>'
)
SCORES = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2]  # lower = more informative: tasks 2, 6, 4 are the top three


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if shutil.which("chromium") is None or not shutil.os.path.exists(CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are missing: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def ranked_project(label_studio, shared):
    ls = label_studio.client()
    project = ls.projects.create(title="alod browser", label_config=CONFIG)
    images = sorted((shared / "data/bccd/BCCD/JPEGImages").glob("*.jpg"))[: len(SCORES)]
    local = "/data/local-files/?d=bccd/BCCD/JPEGImages/"
    ls.projects.import_tasks(project.id, request=[{"data": {"image": local + p.name}} for p in images])
    tasks = sorted(t.id for t in ls.tasks.list(project=project.id))
    for task, score in zip(tasks, SCORES, strict=True):
        ls.predictions.create(task=task, result=[], score=score, model_version="alod-test:1")
    ls.projects.update(id=project.id, model_version="alod-test:1")
    view = ls.views.create(project=project.id, data=view_payload(1, "uncertainty", 0.6))
    ranked = [t for _, t in sorted(zip(SCORES, tasks, strict=True))]
    return {"id": project.id, "view": view.id, "ranked": ranked}


def test_the_alod_tab_shows_the_top_ranked_tasks_first_with_their_score(
    browser, label_studio, ranked_project, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.backend.conftest import LS_PASSWORD, LS_USER

    browser.get(f"{label_studio.url}/user/login/")
    browser.find_element(By.NAME, "email").send_keys(LS_USER)
    browser.find_element(By.NAME, "password").send_keys(LS_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
    WebDriverWait(browser, 60).until(lambda d: "/user/login" not in d.current_url)

    browser.get(f"{label_studio.url}/projects/{ranked_project['id']}/data?tab={ranked_project['view']}")
    rows = ".lsf-table-row"
    WebDriverWait(browser, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, rows)))
    time.sleep(2)  # the rows fill in after the header
    shot = tmp_path / "data-manager.png"
    browser.save_screenshot(str(shot))
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "alod cycle 1: un" in page  # the tab (its title is cut to fit)
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".lsf-th") if h.is_displayed()]
    assert "Prediction score" in headers and any(h.startswith("image") for h in headers), headers  # both in view
    ids = [int(row.text.split()[0]) for row in browser.find_elements(By.CSS_SELECTOR, rows) if row.text.strip()]
    top = ranked_project["ranked"][:3]
    assert ids[:3] == top, f"first rows {ids}, expected {top}; screenshot {shot}"
