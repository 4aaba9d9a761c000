"""`svac demo` in a real browser: Debian's Chromium, headless, driven by Playwright.

The app runs in this process (a Gradio server thread on 127.0.0.1, a free port) with the
bundled default model; each test opens a fresh page. Artifacts are kept after the run, replaced
by the next one, in ``test-artifacts/demo/`` at the repository root (or ``$SVAC_TEST_ARTIFACTS/demo``):
``demo-segment.png``, ``demo-error.png``, ``demo-chat.png`` (full-page screenshots) and
``timings.json`` (seconds from the upload to the overlay shown). Set
``SVAC_DEMO_SCREENSHOT=docs/demo.png`` to also write the segment screenshot there (how the
README's picture is made).

Needs the demo extras (``pip install -e ".[demo,demo-test]"``) and ``/usr/bin/chromium``
(``apt-get install -y chromium``; no browser is downloaded). Where one is missing the tests
are skipped with the reason, unless ``SVAC_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once it has
installed Chromium), which turns the absence into a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from helpers import free_port, scripted_generate

from svac.demo.backend import NO_VIDEO_MESSAGE

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]  # gradio vs pandas 3

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SYNTHETIC = EXAMPLES / "synthetic.mp4"  # 31 frames, 160x120
CHROMIUM = Path(os.environ.get("SVAC_CHROMIUM", "/usr/bin/chromium"))
#: Chromium flags known to work on the project's machines (no network but the package registries).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Screenshots and timings of the last run.
ARTIFACTS = Path(os.environ.get("SVAC_TEST_ARTIFACTS", REPO / "test-artifacts")) / "demo"
#: Longest wait for one model run to show on the page (milliseconds).
RUN_TIMEOUT_MS = 60_000


def _missing() -> list[str]:
    missing = []
    if importlib.util.find_spec("gradio") is None:
        missing.append("gradio (pip install -e '.[demo]')")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[demo-test]')")
    if not CHROMIUM.is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return missing


@pytest.fixture(scope="module", autouse=True)
def _browser_available():
    missing = _missing()
    if missing:
        message = "browser tests need " + ", ".join(missing)
        if os.environ.get("SVAC_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (SVAC_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def demo(_browser_available):
    """The running app and its model: ``(server, model)``."""
    from svac.demo.app import launch_demo
    from svac.loading import load_model

    model = load_model()  # the bundled, trained default model
    server = launch_demo(model, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    yield server, model
    server.close()


@pytest.fixture(scope="module")
def browser(_browser_available):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, demo):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(RUN_TIMEOUT_MS)
    page.goto(demo[0].url)
    page.locator("#svac-segment").wait_for()
    yield page
    context.close()


def _upload(page, video: Path) -> None:
    page.locator("#svac-video input[type=file]").set_input_files(str(video))
    page.locator("#svac-video video").wait_for()  # the upload finished and the player shows it


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_segment_through_the_page(page, demo, record_property):
    from playwright.sync_api import expect

    _, model = demo
    expected = model.segment(SYNTHETIC, "the red square")  # what the library answers (template mode: deterministic)
    start = time.perf_counter()
    _upload(page, SYNTHETIC)
    uploaded = time.perf_counter()
    page.locator("#svac-query textarea").fill("the red square")
    page.locator("#svac-segment").click()
    clicked = time.perf_counter()
    page.locator("#svac-overlay video").wait_for()
    shown = time.perf_counter()
    timings = {"upload_seconds": uploaded - start, "click_to_overlay_seconds": shown - clicked,
               "upload_to_overlay_seconds": shown - start}
    for key, value in timings.items():
        record_property(key, round(value, 3))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2))

    expect(page.locator("#svac-answer textarea")).to_have_value(expected.text)
    assert "[SEG]" in expected.text
    overlay = page.locator("#svac-overlay video")
    page.wait_for_function("v => v.readyState >= 1", arg=overlay.element_handle())  # the browser decodes it
    assert overlay.evaluate("v => [v.videoWidth, v.videoHeight]") == [160, 120]
    preview = page.locator("#svac-preview img")
    expect(preview).to_have_count(expected.num_objects)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.first.element_handle())
    assert preview.first.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [160, 120]  # original size
    expect(page.locator("#svac-preview")).to_contain_text(re.compile(r"object 1: score \d\.\d\d, \d+ px, frame 00000"))
    expect(page.locator("#svac-status")).to_contain_text("1 object over 31 frames of 160x120")

    frame_box = page.locator("#svac-frame input[type=number]")  # the slider's number box
    frame_box.fill("20")
    frame_box.press("Enter")
    expect(page.locator("#svac-preview")).to_contain_text("frame 00020")

    with page.expect_download() as download:
        page.locator("#svac-masks-zip").click()
    with zipfile.ZipFile(download.value.path()) as z:
        pngs = sorted(n for n in z.namelist() if n.endswith(".png"))
    assert pngs == [f"masks/1/{i:05d}.png" for i in range(31)]
    with page.expect_download() as download:
        page.locator("#svac-result-json").click()
    summary = json.loads(Path(download.value.path()).read_text())
    assert summary["text"] == expected.text and summary["num_frames"] == 31

    shot = _screenshot(page, "demo-segment.png")
    if os.environ.get("SVAC_DEMO_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["SVAC_DEMO_SCREENSHOT"])


def test_bad_input_shows_the_command_line_message_and_the_app_keeps_working(page, demo):
    from playwright.sync_api import expect

    _, model = demo
    with pytest.raises(ValueError) as empty_query:
        model.segment(SYNTHETIC, "")
    page.locator("#svac-segment").click()  # no video yet
    expect(page.get_by_text(NO_VIDEO_MESSAGE)).to_be_visible()
    _upload(page, SYNTHETIC)
    page.locator("#svac-segment").click()  # empty query
    expect(page.get_by_text(str(empty_query.value))).to_be_visible()
    _screenshot(page, "demo-error.png")
    page.locator("#svac-query textarea").fill("the red square")
    page.locator("#svac-segment").click()
    page.locator("#svac-overlay video").wait_for()
    expect(page.locator("#svac-answer textarea")).to_have_value(re.compile(r"\[SEG\]"))


def test_chat_keeps_a_conversation_about_the_example_video(page, demo, monkeypatch):
    from playwright.sync_api import expect

    _, model = demo
    ids = model.tokenizer("Three shapes." + model.chat_template.assistant_suffix, add_special_tokens=False).input_ids
    monkeypatch.setattr(model.mllm, "generate", scripted_generate(model.mllm, ids))  # a text-only answer
    page.get_by_role("tab", name="Chat").click()
    page.locator("#svac-examples button").filter(has=page.locator("video[src$='/synthetic.mp4']")).click()
    page.locator("#svac-video video").wait_for()
    page.locator("#svac-message textarea").fill("What is in the video?")
    page.locator("#svac-send").click()
    chatbot = page.locator("#svac-chatbot")
    expect(chatbot).to_contain_text("Three shapes.")
    expect(page.locator("#svac-overlay video")).to_have_count(0)  # text only: no masks
    monkeypatch.undo()  # the model's own generation from here on
    page.locator("#svac-message textarea").fill("Which shape moves? Segment it.")
    page.locator("#svac-send").click()
    page.locator("#svac-overlay video").wait_for()
    expect(chatbot).to_contain_text("Which shape moves? Segment it.")
    expect(chatbot).to_contain_text("[SEG]")
    expect(page.locator("#svac-preview img")).not_to_have_count(0)
    _screenshot(page, "demo-chat.png")


def test_a_click_on_the_preview_refines_the_mask(page, demo):
    """Segment, move to frame 12, click on the object in the refine image: the page shows the library's refinement."""
    from playwright.sync_api import expect

    _, model = demo
    _upload(page, SYNTHETIC)
    page.locator("#svac-query textarea").fill("the red square")
    page.locator("#svac-segment").click()
    page.locator("#svac-overlay video").wait_for()
    frame_box = page.locator("#svac-frame input[type=number]")
    frame_box.fill("12")
    frame_box.press("Enter")
    expect(page.locator("#svac-preview")).to_contain_text("frame 00012")
    image = page.locator("#svac-refine-image img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    k = natural[0] // 160
    assert k >= 1 and natural == [160 * k, 120 * k]  # the original frame, each pixel a k x k block
    box = image.bounding_box()
    scale = min(box["width"] / natural[0], box["height"] / natural[1], 1.0)  # drawn centred, never enlarged

    def at(x, y):  # where pixel (x, y) of the frame is drawn in the element
        return {"x": (box["width"] - natural[0] * scale) / 2 + (x + 0.5) * k * scale,
                "y": (box["height"] - natural[1] * scale) / 2 + (y + 0.5) * k * scale}

    image.click(position=at(100, 60))
    status = page.locator("#svac-status")
    expect(status).to_contain_text(re.compile(r"refined: object 1, positive click at \(\d+, \d+\) on frame 12"))
    x, y = map(int, re.search(r"click at \((\d+), (\d+)\)", status.inner_text()).groups())
    assert (x, y) == (100, 60)  # the page maps the click to the frame's pixel
    expected = model.segment(SYNTHETIC, "the red square").refine(frame=12, points=[(x, y)], labels=[1])
    area = int(expected.masks[0, 12].sum())
    expect(page.locator("#svac-preview")).to_contain_text(f"{area} px, frame 00012")

    page.locator("#svac-click-label").get_by_text("not the object (negative)").click()
    image.click(position=at(20, 20))
    expect(status).to_contain_text(re.compile(r"negative click at \(\d+, \d+\) on frame 12 \(2 correction"))
    with page.expect_download() as download:
        page.locator("#svac-result-json").click()
    summary = json.loads(Path(download.value.path()).read_text())
    assert [c["labels"] for c in summary["corrections"]] == [[1], [0]]
    assert summary["corrections"][0]["points"] == [[x, y]]
    _screenshot(page, "demo-refine.png")
