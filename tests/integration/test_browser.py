"""The page of seq2seq-serve in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium; nothing downloaded) loads the page from a `seq2seq-serve`
process on two tiny models trained here, submits text, and checks what a person sees against the
JSON API: the outputs, every heatmap cell (count, weight, colour), the source pieces lit by
hovering an output piece, a summariser's copy probabilities and coverage, and an error message.
Screenshots go to the test's tmp folder.

With SEQ2SEQ_DEMO_MODEL=runs/demo/model (a model trained by recipes/demo/run.sh) one more test
writes the README's picture: SEQ2SEQ_SCREENSHOT (default docs/serve.png).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="the test compares the page with the API through httpx")
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install -e '.[test]')")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from load_serve import started_server  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"no Chromium ({CHROMIUM}) or chromedriver ({CHROMEDRIVER}): "
           "apt-get install -y chromium chromium-driver (or set CHROMIUM and CHROMEDRIVER)")


@pytest.fixture(scope="module")
def server(tmp_path_factory, serve_models):
    """`seq2seq-serve rev=... copy=... --max-sentences 3` on a free port; yields its url."""
    root = serve_models(tmp_path_factory.mktemp("browser"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [f"rev={root / 'rev'}", f"copy={root / 'copy'}", "--max-sentences", "3", "--device", "cpu"]
    with started_server(args, env=env) as (url, _):
        yield url


def chrome(width: int = 1100, height: int = 900):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = chrome()
    yield driver
    driver.quit()


def submit(browser, url: str, text: str, model: str | None = None, results: int = 1) -> list:
    """Load the page, pick `model`, type `text`, press the button; the result blocks."""
    browser.get(url + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: b.find_element(By.ID, "go").is_enabled())
    if model:
        Select(browser.find_element(By.ID, "model")).select_by_value(model)
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    browser.find_element(By.ID, "go").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.result")) == results
               or b.find_element(By.ID, "error").is_displayed())
    return browser.find_elements(By.CSS_SELECTOR, "article.result")


def alpha(css_colour: str) -> float:
    """The alpha of 'rgba(r, g, b, a)' (or 'rgb(r, g, b)': 1)."""
    parts = re.findall(r"[\d.]+", css_colour)
    return float(parts[3]) if len(parts) == 4 else 1.0


def test_translate_shows_outputs_and_the_attention_heatmap(server, browser, tmp_path):
    lines = ["abcd", "hgfe"]
    api = httpx.post(f"{server}/v1/translate", json={"text": lines, "attention": True}).json()
    blocks = submit(browser, server, "\n".join(lines), results=2)
    assert browser.find_element(By.ID, "go").text == "Translate"
    for block, outputs, matrices in zip(blocks, api["outputs"], api["attention"]):
        assert block.find_element(By.CSS_SELECTOR, ".output").text == outputs[0].strip()
        att = matrices[0]
        table = block.find_element(By.CSS_SELECTOR, "table.heatmap")
        for selector, pieces in (("th.src", att["source"]), ("th.out", att["output"])):
            headers = table.find_elements(By.CSS_SELECTOR, selector)
            assert [th.get_attribute("textContent") for th in headers] == pieces
        cells = table.find_elements(By.CSS_SELECTOR, "td.cell")
        weights = [w for row in att["weights"] for w in row]
        assert len(cells) == len(att["output"]) * len(att["source"]) == len(weights)
        assert [float(c.get_attribute("data-w")) for c in cells] == weights
        top = max(range(len(weights)), key=weights.__getitem__)
        colour = cells[top].value_of_css_property("background-color")
        assert abs(alpha(colour) - weights[top]) < 0.01, colour  # drawn as strong as it weighs
        assert not table.find_elements(By.CSS_SELECTOR, "td.copy")  # a translator does not copy
    browser.save_screenshot(str(tmp_path / "translate.png"))


def test_hovering_an_output_piece_lights_its_source_pieces(server, browser, tmp_path):
    api = httpx.post(f"{server}/v1/translate", json={"text": ["abcdef"], "attention": True}).json()
    att = api["attention"][0][0]
    table = submit(browser, server, "abcdef")[0].find_element(By.CSS_SELECTOR, "table.heatmap")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    for t in (0, len(rows) - 1):
        ActionChains(browser).move_to_element(rows[t].find_element(By.CSS_SELECTOR, "th.out")).perform()
        assert "active" in rows[t].get_attribute("class")
        lit = [th for th in table.find_elements(By.CSS_SELECTOR, "th.src")
               if "attended" in th.get_attribute("class")]
        expected = [i for i, w in enumerate(att["weights"][t]) if w >= max(att["weights"][t]) / 2]
        assert [int(th.get_attribute("data-i")) for th in lit] == expected
    browser.save_screenshot(str(tmp_path / "hover.png"))
    assert (tmp_path / "hover.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_summariser_shows_copy_probabilities_and_coverage(server, browser, tmp_path):
    api = httpx.post(f"{server}/v1/summarize", json={"text": ["abzc"], "attention": True}).json()
    att = api["attention"][0][0]
    block = submit(browser, server, "abzc", model="copy")[0]
    assert browser.find_element(By.ID, "go").text == "Summarize"
    assert block.find_element(By.CSS_SELECTOR, ".output").text == api["outputs"][0][0].strip()
    copies = block.find_elements(By.CSS_SELECTOR, "td.copy")
    assert [c.text for c in copies] == [f"{1 - p:.2f}" for p in att["p_gen"]]
    coverage = block.find_elements(By.CSS_SELECTOR, "tr.coverage td")
    assert [c.text for c in coverage] == [f"{c:.1f}" for c in att["coverage"]]
    browser.save_screenshot(str(tmp_path / "summarize.png"))


def test_an_error_is_shown_on_the_page(server, browser):
    submit(browser, server, "a\nb\nc\nd")  # the server takes 3 lines a request
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and "--max-sentences" in error.text


@pytest.mark.skipif(not os.environ.get("SEQ2SEQ_DEMO_MODEL"),
                    reason="set SEQ2SEQ_DEMO_MODEL=runs/demo/model to take docs/serve.png")
def test_screenshot_of_the_demo_model():
    out = Path(os.environ.get("SEQ2SEQ_SCREENSHOT", ROOT / "docs" / "serve.png"))
    driver = chrome(1000, 1000)
    try:
        with started_server([f"dates={os.environ['SEQ2SEQ_DEMO_MODEL']}"]) as (url, _):
            block = submit(driver, url, "saturday, 9 may 1987")[0]
            table = block.find_element(By.CSS_SELECTOR, "table.heatmap")
            rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
            ActionChains(driver).move_to_element(rows[6].find_element(By.CSS_SELECTOR, "th.out")).perform()
            driver.execute_script("window.scrollTo(0, 0)")
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
    finally:
        driver.quit()
    assert out.stat().st_size < 300_000
