"""The lineage page in a real browser (headless Chromium driven over WebDriver): a reviewer
pastes a token, asks for a teacher's descendants, and sees the flagged teacher and the at-risk
student marked, with the explanation one click away."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import studbook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (CHROMIUM and DRIVER):
        pytest.fail("Chromium and chromedriver are needed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_marks_flagged_and_at_risk_nodes(tour: dict[str, str], browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    studbook(tour, "keygen")
    studbook(tour, "keys", "register")
    studbook(tour, "demo")
    token = (Path(tour["cwd"]) / "studbook-data" / "admin-token").read_text().strip()

    driver.get(tour["STUDBOOK_URL"] + "/")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "token").send_keys(token)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "ref").send_keys("demo/owl-teacher@1")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "direction").send_keys("descendants")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "go").click()  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 20)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "g.node[data-status='atrisk']")))
    status = {
        g.text.splitlines()[0]: g.get_attribute("data-status")
        for g in driver.find_elements(By.CSS_SELECTOR, "g.node")  # type: ignore[attr-defined]
    }
    assert status["demo/owl-teacher@1"] == "flagged"
    assert status["demo/owl-student@1"] == "atrisk"
    assert status["demo/owl-numbers@1"] == "plain"
    driver.find_element(  # type: ignore[attr-defined]
        By.CSS_SELECTOR, "g.node[data-status='atrisk']"
    ).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "detail"), "generated_by"))
    assert "owl" in driver.find_element(By.ID, "detail").text  # type: ignore[attr-defined]
    assert driver.find_element(By.ID, "msg").text == ""  # type: ignore[attr-defined]
    driver.save_screenshot(str(Path(tour["cwd"]) / "lineage.png"))  # type: ignore[attr-defined]
