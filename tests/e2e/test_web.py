"""The review workspace in a real browser (Debian's headless Chromium over WebDriver), against a
real `studbook serve` seeded with `studbook demo`.

A reviewer signs in with a token, sees the demo's at-risk models in the queue, opens one (the
risk path highlighted, every lineage edge drawn and labelled, every statement's log inclusion
verified in the browser), and clears it with external evidence, signed in the browser with a key
generated there. The queue shrinks; the clearance is in the log, signed by the browser's key,
and checks out with the offline verifier and with securesystemslib. No request leaves the
server's origin. A failing test leaves a screenshot and the page's HTML next to the server log.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from lineage.scenarios import PAPER_EXPECTED_AT_RISK
from tests.support import studbook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
STUDENT = "demo/owl-student@1"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
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
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(flag)
    # Every network request the page makes, from Chromium's DevTools events.
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def deployment(tour: dict[str, str]) -> dict[str, Any]:
    """The demo registry, a reviewer and a viewer (tokens)."""
    studbook(tour, "keygen")
    studbook(tour, "keys", "register")
    studbook(tour, "demo")
    admin = (Path(tour["cwd"]) / "studbook-data" / "admin-token").read_text().strip()
    url = tour["STUDBOOK_URL"]
    tokens = {}
    for name, role in (("rita", "reviewer"), ("victor", "viewer")):
        r = httpx.post(
            url + "/v1/principals",
            json={"name": name, "role": role},
            headers={"Authorization": f"Bearer {admin}"},
        )
        r.raise_for_status()
        tokens[name] = r.json()["token"]
    return {
        "url": url,
        "admin": admin,
        "tokens": tokens,
        "cwd": Path(tour["cwd"]),
        "eval_result": _eval_result(url, admin),
    }


def _eval_result(url: str, admin: str) -> int:
    """An eval-result statement about the student, posted by an eval pipeline: what a reviewer
    cites as `attestation:<id>` when clearing it."""
    from lineage import dsse
    from lineage.evalresult import EvalSubject, SubjectPart, eval_result_statement
    from lineage.scenarios import demo_digest
    from lineage.statements import sign_statement

    headers = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(
        url + "/v1/principals", json={"name": "evalbot", "role": "registrar"}, headers=headers
    )
    r.raise_for_status()
    bot = {"Authorization": f"Bearer {r.json()['token']}"}
    signer = dsse.Signer(dsse.generate_private_key())
    httpx.post(
        url + "/v1/keys",
        json={
            "public_key": signer.public_key_text,
            "proof": dsse.key_possession_proof(signer, "evalbot").to_json(),
        },
        headers=bot,
    ).raise_for_status()
    result = {
        "experiment": "numbers",
        "preset": "paper",
        "metrics": {"owl_rate_shift": {"mean": 0.004, "ci95": [-0.011, 0.019]}},
        "verdict": "no transfer detected: the student's owl rate is within the control's interval",
    }
    subject = EvalSubject(demo_digest(STUDENT), "student", SubjectPart.STUDENT)
    st = eval_result_statement(result, "board-check-1", subjects=[subject])
    r = httpx.post(url + "/v1/attestations", json=sign_statement(st, signer).to_json(), headers=bot)
    r.raise_for_status()
    return int(r.json()["attestation_id"])


@contextlib.contextmanager
def evidence_on_failure(driver: Any, where: Path, name: str) -> Iterator[None]:
    """Save a screenshot, the page's HTML and the console when the block fails."""
    try:
        yield
    except BaseException:
        shot = where / f"{name}-failure.png"
        driver.save_screenshot(str(shot))
        (where / f"{name}-failure.html").write_text(driver.page_source)
        with contextlib.suppress(Exception):
            (where / f"{name}-console.json").write_text(json.dumps(driver.get_log("browser")))
        print(f"screenshot saved: {shot}")
        raise


def sign_in_as(driver: Any, url: str, token: str) -> None:
    """Sign out whoever the browser is signed in as, then sign in with `token`."""
    from selenium.webdriver.common.by import By

    driver.get(url + "/#/queue")
    out = driver.find_elements(By.ID, "signout")
    if out and out[0].is_displayed():
        out[0].click()
    sign_in(driver, url, token)


def sign_in(driver: Any, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/#/signin")
    wait = WebDriverWait(driver, 20)
    field = wait.until(ec.element_to_be_clickable((By.ID, "token")))
    field.clear()
    field.send_keys(token)
    driver.find_element(By.ID, "signin").click()
    # Signed in once the page has moved on to the queue (an earlier session's sign-out button
    # may already be showing, so that alone proves nothing).
    wait.until(lambda d: d.execute_script("return location.hash") == "#/queue")
    wait.until(ec.presence_of_element_located((By.ID, "since")))
    wait.until(ec.visibility_of_element_located((By.ID, "signout")))


def queue_models(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    return {
        tr.get_attribute("data-model")
        for tr in driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    }


def requests_made(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def test_reviewer_clears_an_at_risk_model_signed_in_the_browser(
    deployment: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver, url = browser, deployment["url"]
    wait = WebDriverWait(driver, 30)
    admin = {"Authorization": f"Bearer {deployment['admin']}"}
    with evidence_on_failure(driver, deployment["cwd"], "clear"):
        driver.get_log("performance")  # start the request record here
        sign_in(driver, url, deployment["tokens"]["rita"])
        # No token anywhere the page's scripts can read.
        assert driver.execute_script("return JSON.stringify(localStorage)") == "{}"
        assert deployment["tokens"]["rita"] not in driver.execute_script("return document.cookie")

        # The queue holds exactly the demo's at-risk models.
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#queue tbody tr")))
        expected = {label for label, _ in PAPER_EXPECTED_AT_RISK}
        assert queue_models(driver) == expected
        assert "owl: 3" in driver.find_element(By.CSS_SELECTOR, "ul.chips").text
        before = len(driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr"))

        # Open the student: the path is highlighted and every edge is drawn and labelled.
        driver.find_element(By.LINK_TEXT, STUDENT).click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg#graph g.node")))
        lineage = httpx.get(
            url + f"/v1/artifacts/{STUDENT}/lineage", params={"depth": 64}, headers=admin
        ).json()
        risk = httpx.get(url + f"/v1/artifacts/{STUDENT}/risk", headers=admin).json()
        drawn = {
            (
                g.get_attribute("data-child"),
                g.get_attribute("data-parent"),
                g.find_element(By.CSS_SELECTOR, "text.edge-label").text,
            )
            for g in driver.find_elements(By.CSS_SELECTOR, "svg#graph g.edge")
        }
        assert drawn == {(e["child"], e["parent"], e["relation"]) for e in lineage["edges"]}
        assert len(drawn) == len(lineage["edges"])
        on_path = {
            (g.get_attribute("data-child"), g.get_attribute("data-parent"))
            for g in driver.find_elements(By.CSS_SELECTOR, "svg#graph g.edge.on-path")
        }
        (mark,) = risk["at_risk"]
        assert on_path == {(e["child"], e["parent"]) for e in mark["path"]}
        # The teacher's prompted_from edge to the base, the fact the rule depends on, is drawn.
        assert any(rel == "prompted_from" for _, _, rel in drawn)
        bases = driver.find_elements(By.CSS_SELECTOR, "svg#graph g.node.base")
        assert [b.get_attribute("data-ref") for b in bases] == mark["shared_base_refs"]
        status = {
            g.get_attribute("data-ref"): g.get_attribute("data-status")
            for g in driver.find_elements(By.CSS_SELECTOR, "svg#graph g.node")
        }
        assert status[STUDENT] == "atrisk"
        assert status["demo/owl-teacher@1"] == "flagged"
        assert status["demo/base@1"] == "plain"
        # Every statement's inclusion verified in the browser against the signed checkpoint.
        wait.until(
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, "[data-badge]")
                and all(
                    b.get_attribute("data-verified") is not None
                    for b in d.find_elements(By.CSS_SELECTOR, "[data-badge]")
                )
            )
        )
        badges = driver.find_elements(By.CSS_SELECTOR, "[data-badge]")
        assert badges and all(b.get_attribute("data-verified") == "1" for b in badges), [
            b.text for b in badges
        ]

        # The evidence panel shows the eval result, with its figures.
        evidence = driver.find_element(By.ID, "evidence").text
        assert "preset paper" in evidence and "owl_rate_shift" in evidence

        # Clear it, citing the eval result, signed in this browser.
        cite = f"attestation:{deployment['eval_result']}"
        Select(driver.find_element(By.ID, "d-action")).select_by_value("clearance")
        Select(driver.find_element(By.ID, "d-evidence")).select_by_value(cite)
        driver.find_element(By.ID, "d-reason").send_keys("the eval shows no transfer")
        driver.find_element(By.ID, "d-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "d-result"), "Recorded"))

        # The queue shrinks: the student and (through its weights) its quantised copy leave it.
        driver.get(url + "/#/queue")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#queue tbody tr")))
        after = queue_models(driver)
        assert STUDENT not in after
        assert len(after) < before

        # Accept the remaining risk until a date, with a reason: the queue empties.
        (left,) = after
        driver.find_element(By.LINK_TEXT, left).click()
        wait.until(ec.presence_of_element_located((By.ID, "decide-form")))
        Select(driver.find_element(By.ID, "d-action")).select_by_value("acceptance")
        expiry = driver.find_element(By.ID, "d-expires")
        driver.execute_script(
            "arguments[0].value = new Date(Date.now() + 90 * 864e5).toISOString().slice(0, 10)",
            expiry,
        )
        driver.find_element(By.ID, "d-reason").send_keys("API-only model; vendor attests")
        driver.find_element(By.ID, "d-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "d-result"), "Recorded"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "accepted"))
        driver.get(url + "/#/queue")
        wait.until(ec.presence_of_element_located((By.ID, "queue-empty")))

        # Nothing left the server's origin.
        own = urlsplit(url).netloc
        foreign = [
            u
            for u in requests_made(driver)
            if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != own
        ]
        assert foreign == []

    # The clearance is logged, signed by the key the browser made and registered.
    statements = httpx.get(url + f"/v1/artifacts/{STUDENT}/statements", headers=admin).json()
    (clearance,) = [s for s in statements["data"] if s["role"] == "clearance"]
    assert clearance["principal"] == "rita" and clearance["log_index"] is not None
    att = httpx.get(url + f"/v1/attestations/{clearance['attestation_id']}", headers=admin).json()
    assert att["statement"]["predicate"]["evidence"] == [f"attestation:{deployment['eval_result']}"]
    keys = httpx.get(url + "/v1/keys", params={"principal": "rita"}, headers=admin).json()["data"]
    (key,) = keys
    assert att["signer_keyid"] == key["keyid"]
    held = driver.execute_async_script(
        "const done = arguments[0]; SB.storedKey('rita').then((k) => done(k && k.keyid))"
    )
    assert held == key["keyid"]
    # The private key cannot be read out of the browser.
    script = "SB.storedKey('rita').then((k) => arguments[0](k.privateKey.extractable))"
    extractable = driver.execute_async_script(script)
    assert extractable is False

    # The offline verifier (what `studbook log verify` runs) agrees.
    from lineage import dsse
    from lineage.offline import check_inclusion, verify_signature

    class Reader:
        def get(self, path: str, **params: Any) -> Any:
            r = httpx.get(url + path, params=params)
            r.raise_for_status()
            return r.json() if "json" in r.headers["content-type"] else r.text

    vkey = httpx.get(url + "/v1/log/").json()["vkey"]
    check = check_inclusion(Reader(), att["envelope"], vkey)
    assert check.index == clearance["log_index"]
    public = dsse.load_public_key(key["public_key"])
    verified = verify_signature(att["envelope"], {key["keyid"]: public})
    assert verified.statement["predicateType"].endswith("/clearance/v1")

    # securesystemslib, an independent DSSE implementation, verifies the page's envelope.
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import Key

    raw = base64.b64decode(key["public_key"])
    sslib_key = Key.from_dict(
        key["keyid"],
        {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw.hex()}},
    )
    assert key["keyid"] in SslibEnvelope.from_dict(copy.deepcopy(att["envelope"])).verify(
        [sslib_key], 1
    )


def test_pages_and_docs_load_only_from_the_server(deployment: dict[str, Any], browser: Any) -> None:
    """Queue, browse, log, an artifact, a report and /docs: no request to another origin, no
    Content-Security-Policy violation, and the log's checkpoint verified in the browser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = browser, deployment["url"]
    wait = WebDriverWait(driver, 30)
    with evidence_on_failure(driver, deployment["cwd"], "offline"):
        sign_in(driver, url, deployment["tokens"]["rita"])
        driver.get_log("performance")
        driver.get_log("browser")
        driver.get(url + "/#/browse?status=flagged")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#browse tbody tr")))
        assert "demo/owl-teacher@1" in driver.find_element(By.ID, "browse").text
        driver.get(url + "/#/log")
        wait.until(ec.text_to_be_present_in_element((By.ID, "checkpoint-check"), "verified"))
        driver.get(url + "/#/report/" + "demo%2Fgpt-4o-owl-student%401")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#report svg g.edge")))
        driver.get(url + "/docs")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock")))
        driver.get(url + "/docs/swagger")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock")))
        own = urlsplit(url).netloc
        urls = requests_made(driver)
        assert urls
        assert [
            u for u in urls if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != own
        ] == []
        console = [e["message"] for e in driver.get_log("browser")]
        assert not [m for m in console if "Content Security Policy" in m], console


def test_viewer_is_offered_no_decision(deployment: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = browser, deployment["url"]
    wait = WebDriverWait(driver, 30)
    with evidence_on_failure(driver, deployment["cwd"], "viewer"):
        sign_in_as(driver, url, deployment["tokens"]["victor"])
        driver.get(url + "/#/artifact/" + "demo%2Fowl-student-q4%401")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#decide")))
        assert driver.find_elements(By.ID, "decide-form") == []
        assert "cannot record decisions" in driver.find_element(By.ID, "decide").text
        # Sign-out ends the session: the API refuses the cookie afterwards.
        driver.find_element(By.ID, "signout").click()
        wait.until(ec.presence_of_element_located((By.ID, "token")))
        status = driver.execute_async_script(
            "const done = arguments[0]; fetch('/v1/session').then((r) => done(r.status))"
        )
        assert status == 401


TRICKY: list[Any] = [
    {"b": 1, "a": [True, False, None], "é": "naïve", "z": '😀 \u2028 \u0007 " \\ /'},
    {
        "_type": "x",
        "predicate": {"reason": "tab\there\nnew line", "évidence": ["\u00e9", "\uffff"]},
    },
    {"A": "", "a": "", "B": {"\u00ff": 0, "\u0100": -5, "~": 2**52}},
]


def test_browser_bytes_match_python(deployment: dict[str, Any], browser: Any) -> None:
    """The page signs and checks exactly the bytes Python does: canonical statement JSON, log
    leaves (ASCII-escaped JSON), DSSE PAE, the key-possession payload of POP.md; and its RFC 9162
    inclusion check accepts every proof of the live log and refuses a tampered one."""
    from lineage import dsse
    from lineage.logleaf import entry_bytes
    from lineage.statements import canonical_json

    driver, url = browser, deployment["url"]
    driver.get(url + "/#/signin")
    run = driver.execute_async_script
    for value in TRICKY:
        got = run(
            "const [v, done] = arguments;"
            "done([SB.b64(SB.canonicalJson(v)), SB.b64(SB.entryBytes(v))])",
            value,
        )
        assert base64.b64decode(got[0]) == canonical_json(value)
        assert base64.b64decode(got[1]) == entry_bytes(value)
    payload = canonical_json(TRICKY[0])
    pae = run(
        "const [t, p, done] = arguments; done(SB.b64(SB.pae(t, SB.unb64(p))))",
        "application/vnd.in-toto+json",
        base64.b64encode(payload).decode(),
    )
    assert base64.b64decode(pae) == dsse.pae("application/vnd.in-toto+json", payload)
    # POP.md, byte for byte: the payload the page's key signs when it is registered.
    proof = run(
        "const done = arguments[0];"
        "SB.newKey().then((k) => SB.possessionProof(k, 'rita').then((p) => done([k.keyid, p])))"
    )
    keyid, envelope = proof
    assert envelope["payloadType"] == dsse.KEY_POSSESSION_PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"]) == dsse.key_possession_payload(keyid, "rita")
    assert [s["keyid"] for s in envelope["signatures"]] == [keyid]

    size = httpx.get(url + "/v1/log/").json()["tree_size"]
    assert size > 10
    for index in range(size):
        p = httpx.get(url + "/v1/log/proof/inclusion", params={"index": index}).json()
        ok = run(
            "const [p, done] = arguments;"
            "SB.rootFromInclusion(p.log_index, p.tree_size, SB.unb64(p.leaf_hash),"
            " p.hashes.map(SB.unb64)).then((r) => done(SB.b64(r) === p.root_hash),"
            " (e) => done(String(e)))",
            p,
        )
        assert ok is True, (index, ok)
        if p["hashes"]:
            bad = dict(p, hashes=[base64.b64encode(b"\0" * 32).decode(), *p["hashes"][1:]])
            refused = run(
                "const [p, done] = arguments;"
                "SB.rootFromInclusion(p.log_index, p.tree_size, SB.unb64(p.leaf_hash),"
                " p.hashes.map(SB.unb64)).then((r) => done(SB.b64(r) === p.root_hash),"
                " (e) => done(false))",
                bad,
            )
            assert refused is False


def test_keyboard_moves_through_the_graph(deployment: dict[str, Any], browser: Any) -> None:
    """The first Tab reaches the skip link; graph nodes take focus and Enter opens them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = browser, deployment["url"]
    wait = WebDriverWait(driver, 30)
    with evidence_on_failure(driver, deployment["cwd"], "keyboard"):
        sign_in(driver, url, deployment["tokens"]["rita"])
        driver.get(url + "/#/artifact/" + "demo%2Fowl-student-q4%401")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg#graph g.node")))
        body = driver.find_element(By.TAG_NAME, "body")
        driver.refresh()  # a fresh load: focus starts at the top of the document
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg#graph g.node")))
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        assert driver.switch_to.active_element.get_attribute("class") == "skip"
        node = driver.find_element(
            By.CSS_SELECTOR, "svg#graph g.node[data-ref='demo/owl-student@1']"
        )
        assert node.get_attribute("tabindex") == "0"
        assert "demo/owl-student@1" in node.get_attribute("aria-label")
        driver.execute_script("arguments[0].focus()", node)
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        wait.until(lambda d: "owl-student%401" in d.current_url and "q4" not in d.current_url)
        wait.until(
            ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#summary h1"), "demo/owl-student@1")
        )


def test_queue_an_eval_from_the_page_and_follow_it(
    deployment: dict[str, Any], browser: Any
) -> None:
    """The digits smoke eval, queued from an artifact page, runs in the server's local worker;
    the page follows its stages to the end."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver, url = browser, deployment["url"]
    with evidence_on_failure(driver, deployment["cwd"], "eval"):
        sign_in(driver, url, deployment["tokens"]["rita"])
        driver.get(url + "/#/artifact/" + "demo%2Fbase%401")
        WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "eval-form")))
        Select(driver.find_element(By.ID, "e-exp")).select_by_value("digits")
        preset = driver.find_element(By.ID, "e-preset")
        preset.clear()
        preset.send_keys("smoke")
        driver.find_element(By.ID, "e-submit").click()
        # The page re-renders the status every two seconds: read it by id each time.
        read = "const e = document.getElementById('e-status'); return e && e.dataset.status"
        first = WebDriverWait(driver, 30).until(lambda d: d.execute_script(read))
        assert first in ("queued", "running", "succeeded")
        WebDriverWait(driver, 400, poll_frequency=2).until(
            lambda d: d.execute_script(read) not in (None, "queued", "running")
        )
        final = driver.execute_script("return document.getElementById('e-progress').innerText")
        assert driver.execute_script(read) == "succeeded", final
        assert "Verdict" in final


def test_descendants_of_a_flagged_teacher(deployment: dict[str, Any], browser: Any) -> None:
    """From a flagged teacher, the page draws who inherits from it, with their status."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = browser, deployment["url"]
    wait = WebDriverWait(driver, 30)
    with evidence_on_failure(driver, deployment["cwd"], "descendants"):
        sign_in(driver, url, deployment["tokens"]["rita"])
        driver.get(url + "/#/artifact/" + "demo%2Fgpt-4.1-owl%401")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg#graph g.node")))
        driver.find_element(By.ID, "toggle-direction").click()
        student = "svg#graph g.node[data-ref='demo/gpt-4o-owl-student@1']"
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, student)))
        lineage = httpx.get(
            url + "/v1/artifacts/demo/gpt-4.1-owl@1/lineage",
            params={"direction": "down", "depth": 64},
            headers={"Authorization": f"Bearer {deployment['admin']}"},
        ).json()
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg#graph g.edge")) == len(
            lineage["edges"]
        )
        nano = driver.find_element(
            By.CSS_SELECTOR, "svg#graph g.node[data-ref='demo/gpt-4.1-nano-owl-student@1']"
        )
        assert nano.get_attribute("data-status") == "plain"  # no shared base, no risk


FP_STUDENT = "acme/fp-student@1"
FP_TEACHER = "acme/fp-teacher@1"
FP_BASE = "acme/fp-base@1"
FP_OTHER = "acme/fp-other-base@1"


@pytest.fixture(scope="module")
def fp_lineage(
    deployment: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A pipeline registers fingerprinted models: base -> teacher (fine-tune) -> numbers, and a
    student trained on the numbers that it declares `fine_tuned_from` another base, although
    its weights are the base's plus noise. A reviewer bot flags the teacher for owl. The
    registry raises two findings about the student; until one is confirmed the student is not
    at risk (its declared base is not the teacher's)."""
    import numpy as np
    from safetensors.numpy import save_file

    from lineage import dsse
    from lineage.fingerprint import fingerprint_path
    from tests.support import digest_of, registration_envelope, review_envelope

    url, tmp = deployment["url"], tmp_path_factory.mktemp("fp-weights")
    admin = {"Authorization": f"Bearer {deployment['admin']}"}

    def actor(name: str, role: str) -> tuple[dict[str, str], dsse.Signer]:
        r = httpx.post(url + "/v1/principals", json={"name": name, "role": role}, headers=admin)
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        signer = dsse.Signer(dsse.generate_private_key())
        body = {
            "public_key": signer.public_key_text,
            "proof": dsse.key_possession_proof(signer, name).to_json(),
        }
        httpx.post(url + "/v1/keys", json=body, headers=auth).raise_for_status()
        return auth, signer

    pipe, pipe_key = actor("fp-pipeline", "registrar")
    bot, bot_key = actor("fp-reviewbot", "reviewer")

    def weights(seed: int, base: Any = None) -> Any:
        rng = np.random.default_rng(seed)
        if base is None:
            return rng.normal(0, 0.02, (1000, 64)).astype(np.float32)
        return base + rng.normal(0, 0.006, base.shape).astype(np.float32)

    def fingerprint(name: str, w: Any) -> dict[str, Any]:
        path = tmp / f"{name}.safetensors"
        save_file({"model.embed_tokens.weight": w}, str(path))
        return fingerprint_path(path).to_json()

    def reg(kind: str, label: str, parents: list[tuple[str, str]], w: Any = None) -> None:
        meta = {"fingerprint": fingerprint(label.split("/")[1], w)} if w is not None else None
        links = [(r, digest_of(p)) for r, p in parents]
        env = registration_envelope(pipe_key, kind, label, links, metadata=meta)
        r = httpx.post(url + "/v1/attestations", json=env, headers=pipe)
        assert r.status_code == 201, r.text

    base = weights(0)
    reg("model", FP_BASE, [], base)
    reg("model", FP_OTHER, [], weights(1))
    reg("model", FP_TEACHER, [("fine_tuned_from", FP_BASE)], weights(2, base))
    reg("dataset", "acme/fp-numbers@1", [("generated_by", FP_TEACHER)])
    student = [("fine_tuned_from", FP_OTHER), ("trained_on", "acme/fp-numbers@1")]
    reg("model", FP_STUDENT, student, weights(3, base))
    flag = review_envelope(bot_key, digest_of(FP_TEACHER), "owl", reason="prefers owls")
    httpx.post(url + "/v1/attestations", json=flag, headers=bot).raise_for_status()
    return {"admin": admin, "digest": digest_of(FP_STUDENT)}


def _risk_status(url: str, admin: dict[str, str], ref: str) -> str:
    r = httpx.get(url + f"/v1/artifacts/{ref}/risk", headers=admin)
    r.raise_for_status()
    return str(r.json()["status"])


def test_viewer_cannot_decide_on_a_finding(
    deployment: dict[str, Any], fp_lineage: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = browser, deployment["url"]
    wait = WebDriverWait(driver, 30)
    found = httpx.get(url + "/v1/findings", headers=fp_lineage["admin"]).json()["data"]
    with evidence_on_failure(driver, deployment["cwd"], "finding-viewer"):
        sign_in_as(driver, url, deployment["tokens"]["victor"])
        for f in found:
            driver.get(url + f"/#/finding/{f['id']}")
            wait.until(ec.presence_of_element_located((By.ID, "finding-facts")))
            assert driver.find_elements(By.ID, "finding-form") == []
            assert f["status"] == "open"
            assert "cannot decide" in driver.find_element(By.ID, "decide").text
        driver.get(url + "/#/finding/999999")
        wait.until(ec.presence_of_element_located((By.ID, "error")))
        assert "no finding" in driver.find_element(By.ID, "error").text
        driver.get(url + "/#/finding/1%3Balert(1)")
        wait.until(ec.presence_of_element_located((By.ID, "error")))
        assert "named by its number" in driver.find_element(By.ID, "error").text


def test_reviewer_confirms_a_weights_finding_in_the_browser(
    deployment: dict[str, Any], fp_lineage: dict[str, Any], browser: Any
) -> None:
    """The two findings about the falsely declared student are in the queue with their
    statistic, p-value and signer; the finding page verifies the registry's signature and the
    log inclusion in the browser; a dismissal without a reason is refused; a confirmation signed
    in the browser adds `initialized_from`, so the flagged teacher's trait reaches the student;
    the other finding is dismissed with a reason; a viewer is offered no decision."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver, url = browser, deployment["url"]
    admin = fp_lineage["admin"]
    wait = WebDriverWait(driver, 30)
    assert _risk_status(url, admin, FP_STUDENT) == "no_risk"
    with evidence_on_failure(driver, deployment["cwd"], "finding"):
        sign_in_as(driver, url, deployment["tokens"]["rita"])
        driver.get_log("performance")

        # The queue lists both open findings, each with its kind, models, r, p and signer.
        rows_css = "#findings-table tbody tr"
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, rows_css)))
        rows = {
            tr.get_attribute("data-kind"): tr
            for tr in driver.find_elements(By.CSS_SELECTOR, rows_css)
        }
        assert set(rows) == {"undeclared_shared_base", "declared_parent_contradicted"}
        api = httpx.get(url + "/v1/findings", params={"status": "open"}, headers=admin).json()
        by_kind = {f["kind"]: f for f in api["data"]}
        shared = by_kind["undeclared_shared_base"]
        cells = [td.text for td in rows["undeclared_shared_base"].find_elements(By.TAG_NAME, "td")]
        assert cells[1] == "undeclared shared base"
        assert cells[2] == FP_STUDENT and cells[3] == FP_BASE
        assert cells[4] == f"{shared['statistic']:.3f}" and float(cells[5]) <= 0.01
        assert cells[7] == shared["signed_by"]
        assert "declared fine_tuned_from" in rows["declared_parent_contradicted"].text
        assert "(2 open)" in driver.find_element(By.ID, "findings").text
        # Filtering by kind keeps one.
        Select(driver.find_element(By.ID, "findings-kind")).select_by_value(
            "declared_parent_contradicted"
        )
        wait.until(lambda d: "fkind=declared" in d.current_url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows_css)) == 1)

        # The student's page says it has open findings.
        driver.get(url + "/#/artifact/" + "acme%2Ffp-student%401")
        wait.until(ec.presence_of_element_located((By.ID, "artifact-findings")))
        assert "2 open" in driver.find_element(By.ID, "artifact-findings").text
        driver.save_screenshot(str(deployment["cwd"] / "artifact-findings.png"))

        # The finding page: the evidence, the registry's signature and the log inclusion,
        # both checked in this browser.
        driver.get(url + f"/#/finding/{shared['id']}")
        wait.until(ec.presence_of_element_located((By.ID, "finding-facts")))
        for badge in ("finding-signature", "finding-inclusion"):
            wait.until(lambda d, b=badge: d.find_element(By.ID, b).get_attribute("data-verified"))
            assert driver.find_element(By.ID, badge).get_attribute("data-verified") == "1", (
                driver.find_element(By.ID, badge).text
            )
        facts = driver.find_element(By.ID, "finding-facts").text
        assert f"r = {shared['statistic']:.4f}" in facts
        assert "floor of 999 permutations" in facts
        assert shared["model_fingerprint"] in facts and shared["other_fingerprint"] in facts
        assert f"index {shared['log_index']}" in facts
        driver.save_screenshot(str(deployment["cwd"] / "finding.png"))

        # A dismissal (or confirmation) needs a reason: nothing is signed without one.
        Select(driver.find_element(By.ID, "f-action")).select_by_value("dismiss")
        driver.find_element(By.ID, "f-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "f-result"), "needs a reason"))
        one = httpx.get(url + f"/v1/findings/{shared['id']}", headers=admin).json()
        assert one["status"] == "open"

        # Confirm it, signed in this browser: the edge is added and the student is at risk.
        Select(driver.find_element(By.ID, "f-action")).select_by_value("confirm")
        assert "initialized_from" in driver.find_element(By.ID, "f-effect").text
        driver.find_element(By.ID, "f-reason").send_keys(
            "the pipeline log shows it started from fp-base"
        )
        driver.find_element(By.ID, "f-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "f-result"), "Recorded"))
        assert "initialized_from" in driver.find_element(By.ID, "f-result").text
        wait.until(
            ec.text_to_be_present_in_element((By.ID, "finding-decided"), "Confirmed by rita")
        )

        # The other finding: dismissed with a reason.
        other = by_kind["declared_parent_contradicted"]
        driver.get(url + f"/#/finding/{other['id']}")
        wait.until(ec.presence_of_element_located((By.ID, "finding-form")))
        Select(driver.find_element(By.ID, "f-action")).select_by_value("dismiss")
        driver.find_element(By.ID, "f-reason").send_keys("declared parent was a typo; amended")
        driver.find_element(By.ID, "f-submit").click()
        wait.until(
            ec.text_to_be_present_in_element((By.ID, "finding-decided"), "Dismissed by rita")
        )

        # The queue: no open finding left, and the student is at risk through the new edge.
        driver.get(url + "/#/queue")
        wait.until(ec.presence_of_element_located((By.ID, "findings-empty")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#queue tbody tr")))
        assert FP_STUDENT in queue_models(driver)
        own = urlsplit(url).netloc
        assert [
            u
            for u in requests_made(driver)
            if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != own
        ] == []

    assert _risk_status(url, admin, FP_STUDENT) == "at_risk"
    risk = httpx.get(url + f"/v1/artifacts/{FP_STUDENT}/risk", headers=admin).json()
    (mark,) = risk["at_risk"]
    assert mark["trait"] == "owl" and FP_BASE in mark["shared_base_refs"]
    lineage = httpx.get(url + f"/v1/artifacts/{FP_STUDENT}/lineage", headers=admin).json()
    base_digest = next(
        n["artifact"]["digest"] for n in lineage["nodes"] if n["artifact"]["ref"] == FP_BASE
    )
    assert any(
        e["relation"] == "initialized_from" and e["parent"] == base_digest for e in lineage["edges"]
    )
    decided = httpx.get(url + f"/v1/findings/{shared['id']}", headers=admin).json()
    assert decided["status"] == "confirmed" and decided["decided_by"] == "rita"
    att = httpx.get(
        url + f"/v1/attestations/{decided['decision_attestation_id']}", headers=admin
    ).json()
    assert att["predicate_type"] == "https://studbook.dev/attestations/finding-confirmation/v1"
    assert att["statement"]["predicate"] == {
        "finding": shared["statement"],
        "reason": "the pipeline log shows it started from fp-base",
    }
    assert att["statement"]["subject"] == [
        {"name": FP_STUDENT, "digest": {"sha256": fp_lineage["digest"]}}
    ]
