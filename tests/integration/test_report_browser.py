"""cachebench's HTML report in a real browser (Debian's chromium, headless): a run on a
--scenario timeline writes the page; chromium runs its script and the page says it drew its
four charts and hit no script error; a screenshot is taken. A page with a broken script is
caught the same way (so the check can fail). Run with /usr/bin/python3; release builds."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import Server, check, run

BENCH = os.environ.get("CACHEBENCH_BIN", "cachebench")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def browser(page, *args):
    """chromium --headless on `page`; returns its stdout."""
    home = tempfile.mkdtemp(prefix="chromium-")
    try:
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--user-data-dir=" + home, "--virtual-time-budget=5000", *args,
                            "file://" + page], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "chromium: %d %s" % (p.returncode, p.stderr[-2000:]))
        return p.stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def body_of(page):
    dom = browser(page, "--dump-dom")
    m = re.search(r"<body[^>]*>", dom)
    check(m is not None, "a body in the DOM: %s" % dom[:500])
    return m.group(0)


def test_report_draws_its_charts():
    tmp = tempfile.mkdtemp(prefix="report-")
    try:
        scenario = os.path.join(tmp, "s.yaml")
        with open(scenario, "w") as f:
            f.write("events:\n  - {at: 1.0, exec: \"true\", label: first event}\n"
                    "  - {at: 2.0, exec: \"true\", label: second event}\n")
        page = os.path.join(tmp, "report.html")
        with Server("-t", "1") as s:
            p = subprocess.run([BENCH, "-s", "127.0.0.1", "-p", str(s.port), "-t", "1", "-c", "2",
                                "--test-time", "3", "--scenario", scenario, "--report", page],
                               capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "cachebench: %s" % p.stderr)
        html = open(page).read()
        check("first event" in html and "<h2>Phases</h2>" in html, "events and phases in it")
        check("<script src" not in html and "<link" not in html, "one self-contained file")
        body = body_of(page)
        print("rendered: %s" % body)
        check('data-charts="4"' in body, "four charts drawn: %s" % body)
        check("data-error" not in body, "no script error: %s" % body)
        shot = os.path.join(tmp, "report.png")
        browser(page, "--window-size=1200,1600", "--screenshot=" + shot)
        check(os.path.getsize(shot) > 20000, "a screenshot with something on it")
        # The control: the same page with its chart call broken reports the error.
        broken = os.path.join(tmp, "broken.html")
        with open(broken, "w") as f:
            f.write(html.replace("new uPlot(opts", "new uPlotMissing(opts"))
        bad = body_of(broken)
        check("data-error" in bad and 'data-charts="4"' not in bad,
              "a script error is caught: %s" % bad)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run([test_report_draws_its_charts])
