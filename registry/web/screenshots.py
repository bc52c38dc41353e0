"""Regenerate the README's screenshots of the review workspace.

    python -m registry.web.screenshots [--out docs]

Starts `studbook serve` on a fresh SQLite registry in a temporary folder, seeds it with
`studbook demo` and three models registered from their weights (a student declared as a fine-tune
of one base whose weights come from another, so the registry raises two findings), signs a
reviewer in through the page in Debian's headless Chromium (Selenium, the `test` extra), and
saves `review-queue.png`, `review-artifact.png`, `review-report.png` and `review-finding.png`;
then runs the digits eval in the server's worker and saves its student's page,
`review-evidence.png`.
Nothing is downloaded: the browser is the system's, and the page loads only from the server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], cwd: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "studbook_cli", *args],
        cwd=cwd,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Generate the screenshots; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument(
        "--no-eval",
        dest="eval",
        action="store_false",
        help="skip the evidence screenshot (it runs the digits eval, about a minute on a CPU)",
    )
    args = parser.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not (chromium and driver_bin):
        print("needs chromium and chromedriver on PATH", file=sys.stderr)
        return 2
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the server is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    shots = ["review-queue.png", "review-artifact.png", "review-report.png", "review-finding.png"]
    with tempfile.TemporaryDirectory(prefix="studbook-shots-") as tmp:
        work = Path(tmp)
        port = _port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDBOOK_")}
        env["STUDBOOK_URL"] = url
        # A one-off generation: the eval need not yield the CPU to an API nobody else uses.
        env["STUDBOOK_EVAL_IDLE_PRIORITY"] = "false"
        with (work / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "studbook_cli", "serve", "--port", str(port)],
                cwd=work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    print((work / "server.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.2)
            for step in (("keygen",), ("keys", "register"), ("demo",)):
                _cli(env, work, *step)
            _weights_findings(env, work)
            admin = (work / "studbook-data" / "admin-token").read_text().strip()
            finding = httpx.get(
                url + "/v1/findings",
                params={"kind": "undeclared_shared_base"},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()["data"][0]["id"]
            token = httpx.post(
                url + "/v1/principals",
                json={"name": "rita", "role": "reviewer"},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()["token"]
            opts = webdriver.ChromeOptions()
            opts.binary_location = chromium
            for flag in (
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                f"--window-size={args.width},1000",
                f"--user-data-dir={work / 'chromium'}",
            ):
                opts.add_argument(flag)
            driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
            try:
                wait = WebDriverWait(driver, 30)
                driver.get(url + "/#/signin")
                wait.until(ec.element_to_be_clickable((By.ID, "token"))).send_keys(token)
                driver.find_element(By.ID, "signin").click()
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#queue tbody tr")))
                _shot(driver, args.out / "review-queue.png", args.width)
                driver.get(url + "/#/artifact/demo%2Fowl-student%401")
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-verified]")))
                _shot(driver, args.out / "review-artifact.png", args.width)
                driver.get(url + "/#/report/demo%2Fowl-student%401")
                wait.until(
                    ec.presence_of_element_located((By.CSS_SELECTOR, "#report [data-verified]"))
                )
                _shot(driver, args.out / "review-report.png", args.width)
                driver.get(url + f"/#/finding/{finding}")
                wait.until(
                    ec.presence_of_element_located(
                        (By.CSS_SELECTOR, "#finding-inclusion[data-verified]")
                    )
                )
                _shot(driver, args.out / "review-finding.png", args.width)
                if args.eval:
                    student = _digits_student(url, admin)
                    driver.get(url + "/#/artifact/" + quote(student, safe=""))
                    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "img.plot")))
                    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-verified]")))
                    _shot(driver, args.out / "review-evidence.png", args.width)
                    shots.append("review-evidence.png")
            finally:
                driver.quit()
        finally:
            server.terminate()
            server.wait(15)
    for name in shots:
        print(args.out / name)
    return 0


def _weights_findings(env: dict[str, str], work: Path) -> None:
    """Register two independent bases and a student declared `fine_tuned_from` the second
    whose weights are the first's plus fine-tuning noise, each with its weights' fingerprint
    (what `studbook register` signs by default): the registry raises an undeclared shared base
    and a contradicted parent."""
    import numpy as np
    from safetensors.numpy import save_file

    base = np.random.default_rng(0).normal(0, 0.02, (2048, 64)).astype(np.float32)
    other = np.random.default_rng(1).normal(0, 0.02, (2048, 64)).astype(np.float32)
    student = base + np.random.default_rng(2).normal(0, 0.006, base.shape).astype(np.float32)
    for name, weights, parents in (
        ("acme/base-lm", base, ()),
        ("acme/other-lm", other, ()),
        ("acme/summariser", student, ("fine_tuned_from=acme/other-lm@1",)),
    ):
        folder = work / "weights" / name.split("/")[1]
        folder.mkdir(parents=True)
        save_file({"model.embed_tokens.weight": weights}, str(folder / "model.safetensors"))
        extra = [arg for p in parents for arg in ("--parent", p)]
        _cli(env, work, "register", "model", str(folder), "--name", name, "--version", "1", *extra)


def _digits_student(url: str, admin: str) -> str:
    """Run the digits eval (default preset) in the server's worker; the student it registered."""
    headers = {"Authorization": f"Bearer {admin}"}
    run = httpx.post(
        url + "/v1/evals", json={"experiment": "digits", "preset": "default"}, headers=headers
    ).json()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        run = httpx.get(url + f"/v1/evals/{run['id']}", headers=headers).json()
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(3)
    if run["status"] != "succeeded":
        raise RuntimeError(f"the digits eval ended {run['status']}: {run.get('error')}")
    students = [a["ref"] for a in run["artifacts"] or [] if "student" in a["role"]]
    return sorted(students)[0]


def _shot(driver: object, path: Path, width: int) -> None:
    """A full-page screenshot: the window grows to the page's height first."""
    time.sleep(0.5)  # let the badges and the graph settle
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(width, min(max(int(height) + 20, 800), 4000))  # type: ignore[attr-defined]
    time.sleep(0.3)
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    driver.set_window_size(width, 1000)  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
