#!/usr/bin/env python3
"""Proves the shipped Alertmanager example (alerts/alertmanager.example.yaml) with the real
Alertmanager (Debian's prometheus-alertmanager and its amtool):

  1. `amtool check-config` accepts it;
  2. `amtool config routes test`: kubelet-sentinel alerts reach the receiver of their
     severity (critical -> pager, warning -> tickets, info -> digest), others the default;
  3. a real Alertmanager started on that file (web on a free loopback port, its HA cluster
     listener disabled, storage in a temporary directory) receives, through the v2 API, a
     fleet alert (KubeletSentinelControlFailingOnManyNodes for cluster prod-eu and control
     read-only-port-disabled) and per-node alerts: those of the same cluster and control
     must be inhibited by it (state "suppressed", inhibitedBy = the fleet alert's
     fingerprint), and the others not: another control, another cluster, an alert not in
     the target list, the fleet alert itself. The drift inhibition (a regression mutes the
     configuration drift of its node) is checked the same way.

Bounded: every wait has a timeout (DEADLINE seconds in all); the Alertmanager is stopped
and its directory removed whatever happens. Standard library only.
Usage: python3 scripts/alertmanager-inhibition-test.py
"""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "alerts", "alertmanager.example.yaml")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")
DEADLINE = 60  # seconds, for the Alertmanager to start and to settle the inhibitions

FLEET = "KubeletSentinelControlFailingOnManyNodes"
ROP = "read-only-port-disabled"


def log(msg):
    print(f"alertmanager-inhibition: {msg}", flush=True)


def fail(msg, am_log=None):
    log(f"FAILED: {msg}")
    if am_log and os.path.exists(am_log):
        with open(am_log, errors="replace") as f:
            print("----- alertmanager log (tail) -----\n" + f.read()[-3000:], flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def amtool(*args):
    p = subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def check_config_and_routes():
    rc, out, err = amtool("check-config", CONFIG)
    if rc != 0:
        fail(f"amtool check-config {CONFIG}:\n{out}\n{err}")
    log("amtool check-config: SUCCESS")
    cases = [
        ({"alertname": "KubeletSentinelCriticalControlFailing", "severity": "critical"}, "pager"),
        ({"alertname": FLEET, "severity": "critical", "cluster": "c", "control": ROP}, "pager"),
        ({"alertname": FLEET, "severity": "warning", "cluster": "c", "control": ROP}, "tickets"),
        ({"alertname": "KubeletSentinelAgentMissingOnNodes", "severity": "warning"}, "tickets"),
        ({"alertname": "KubeletSentinelControlDrift", "severity": "info"}, "digest"),
        ({"alertname": "NodeDown", "severity": "critical"}, "default"),
    ]
    for labels, want in cases:
        rc, out, err = amtool("config", "routes", "test", f"--config.file={CONFIG}",
                              *[f"{k}={v}" for k, v in labels.items()])
        if rc != 0 or out != want:
            fail(f"route of {labels}: got {out!r} (rc {rc}, {err}), want {want!r}")
    log(f"amtool config routes test: {len(cases)} routes as expected")


# Alerts posted, and whether the example must inhibit each: (labels, inhibited).
def node_alert(name, cluster, node, control, severity, **extra):
    labels = {"alertname": name, "node": node, "control": control, "severity": severity,
              "job": "kubelet-sentinel", **extra}
    if cluster:
        labels["cluster"] = cluster
    return labels


ALERTS = [
    # The fleet alert: itself never inhibited.
    ({"alertname": FLEET, "cluster": "prod-eu", "control": ROP, "family": "api_access",
      "severity": "critical", "control_severity": "critical"}, False),
    # Same cluster and control, every per-node alert of the target list: inhibited.
    (node_alert("KubeletSentinelCriticalControlFailing", "prod-eu", "eu-1", ROP, "critical",
                control_severity="critical"), True),
    (node_alert("KubeletSentinelCriticalControlFailing", "prod-eu", "eu-2", ROP, "critical",
                control_severity="critical"), True),
    (node_alert("KubeletSentinelControlRegressed", "prod-eu", "eu-3", ROP, "warning"), True),
    # Same cluster, another control: not inhibited.
    (node_alert("KubeletSentinelControlFailing", "prod-eu", "eu-1", "kubeconfig-permissions",
                "warning", control_severity="high"), False),
    (node_alert("KubeletSentinelKubeletVersionUnsupported", "prod-eu", "eu-1",
                "kubelet-version-supported", "warning", control_severity="high"), False),
    # Same control, another cluster, and no cluster at all: not inhibited.
    (node_alert("KubeletSentinelCriticalControlFailing", "prod-us", "us-1", ROP, "critical",
                control_severity="critical"), False),
    (node_alert("KubeletSentinelCriticalControlFailing", "", "lab-1", ROP, "critical",
                control_severity="critical"), False),
    # Same cluster and control, not in the target list: not inhibited.
    (node_alert("KubeletSentinelControlDrift", "prod-eu", "eu-4", ROP, "info"), False),
    # The drift rule: the configuration drift of a regressed node (even one whose
    # regression alert is itself inhibited) is inhibited; another node's is not.
    ({"alertname": "KubeletSentinelConfigDrift", "cluster": "prod-eu", "node": "eu-3",
      "severity": "warning", "job": "kubelet-sentinel"}, True),
    ({"alertname": "KubeletSentinelConfigDrift", "cluster": "prod-eu", "node": "eu-5",
      "severity": "warning", "job": "kubelet-sentinel"}, False),
]


def http(url, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_for(what, check, am_log, timeout=DEADLINE, interval=0.5):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            ok, last = check()
            if ok:
                return
        except OSError as e:  # connection refused while starting, timeouts
            last = repr(e)
        time.sleep(interval)
    fail(f"timed out after {timeout}s waiting for {what}: {last}", am_log)


def key(labels):
    return tuple(sorted(labels.items()))


def run(work):
    port = free_port()
    am_log = os.path.join(work, "alertmanager.log")
    with open(am_log, "w") as out:
        p = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={CONFIG}",
             f"--storage.path={os.path.join(work, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address=",  # no HA gossip listener
             "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for("Alertmanager ready", lambda: (http(f"{base}/-/ready")[0] == 200, None), am_log)
        log(f"alertmanager {base} ready (pid {p.pid})")
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
        posted = [{"labels": labels, "annotations": {"summary": "inhibition test"},
                   "startsAt": stamp(now - datetime.timedelta(minutes=1)),
                   "endsAt": stamp(now + datetime.timedelta(hours=1))}
                  for labels, _ in ALERTS]
        status, _ = http(f"{base}/api/v2/alerts", posted)
        if status != 200:
            fail(f"POST /api/v2/alerts: {status}", am_log)
        want = {key(labels): inhibited for labels, inhibited in ALERTS}

        def settled():
            _, body = http(f"{base}/api/v2/alerts")
            got = {key(a["labels"]): a for a in json.loads(body)}
            missing = [k for k in want if k not in got]
            if missing:
                return False, f"{len(missing)} alerts not listed yet"
            wrong = []
            fleet_fp = got[key(ALERTS[0][0])]["fingerprint"]
            for k, inhibited in want.items():
                st = got[k]["status"]
                by = st.get("inhibitedBy") or []
                name = dict(k)["alertname"]
                if inhibited and (st["state"] != "suppressed" or not by):
                    wrong.append(f"{dict(k)}: {st}, want inhibited")
                elif not inhibited and (st["state"] != "active" or by):
                    wrong.append(f"{dict(k)}: {st}, want active")
                elif inhibited and name != "KubeletSentinelConfigDrift" and by != [fleet_fp]:
                    wrong.append(f"{dict(k)}: inhibited by {by}, want the fleet alert {fleet_fp}")
            return not wrong, "\n  ".join(wrong)

        wait_for("the expected inhibitions", settled, am_log)
        n_inh = sum(1 for _, i in ALERTS if i)
        log(f"{len(ALERTS)} alerts posted: the {n_inh} expected inhibited "
            f"(by the fleet alert, and the drift rule), the {len(ALERTS) - n_inh} others active")
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    if not ALERTMANAGER or not AMTOOL:
        fail("prometheus-alertmanager or amtool is missing (Debian package "
             "prometheus-alertmanager)")
    t0 = time.time()
    check_config_and_routes()
    work = tempfile.mkdtemp(prefix="ks-am-inhibition-")
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"passed in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
