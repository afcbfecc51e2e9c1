#!/usr/bin/env python3
"""The real pipeline, on loopback: kubelet-sentinel agents -> Prometheus (Debian's package,
loading the project's alert rules) -> Alertmanager (Debian's package).

Asserts that
  1. every agent target is up in Prometheus (job "kubelet-sentinel");
  2. the expected alerts reach Alertmanager, with the right node and control labels:
     - an insecure *live* kubelet (the test-support stand-in: anonymous auth on,
       AlwaysAllow, read-only port open) -> critical controls failing;
     - a hardened fixture node edited after its baseline was taken (config file replaced
       by rename, the kubelet not restarted: read-only port opened, kernel defaults no
       longer protected, another idle timeout) -> a critical control failing, a
       regression, control drift, configuration drift, config pending restart;
     - a node without a kubelet -> kubelet not found;
     - an agent killed -> agent down;
     - a node kube-state-metrics lists (a static kube_node_info target here) without an
       agent -> the fleet rules count it, KubeletSentinelAgentMissingOnNodes names it;
  3. every panel query of every dashboard in dashboards/ returns data from that Prometheus
     (the node dashboard's for the live node, and its control status and drift queries for
     the drift node too);
  4. /metrics is protected as the default install protects it: every agent serves HTTPS
     only (a self-signed certificate) with `--metrics-auth kubernetes`, against a small
     fake Kubernetes API in this script (TokenReview and SubjectAccessReview, empty pod,
     namespace and node lists). Prometheus scrapes with `scheme: https`,
     `insecure_skip_verify` and the bearer token of its service account, as the shipped
     ServiceMonitor does; a second job with a token the API does not authenticate gets
     HTTP 401 on every target (up == 0), and a token whose user is not allowed gets 403.

Both shapes of kubelet_sentinel_control_status go through the pipeline: the live and empty
agents export the default (the current status of each control only, value 1), the drift
agent the full StateSet (`--metrics-control-states all`: every status, 0 or 1); the alerts
and dashboard queries above must hold for both.

The rules are the project's alerts/kubelet-sentinel.rules.yaml with every `for:` shortened
to 0s (the durations themselves are covered by `promtool test rules` in
scripts/check-alerts.sh); nothing else is changed. Every process started here is stopped by
its pid. Needs the debug binaries built by `cargo test --features standin` (the script
builds them if missing) and the Debian packages prometheus and prometheus-alertmanager
(scripts/test.sh installs them).
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "target", "debug", "kubelet-sentinel")
STANDIN = os.path.join(ROOT, "target", "debug", "kubelet")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
WAIT = 90  # seconds, for each stage

LIVE, DRIFT, EMPTY = "pipeline-live", "pipeline-drift", "pipeline-empty"

# The fake API's credentials: the agents' own token, Prometheus's service account token
# (allowed to get /metrics), a valid token whose user is not allowed, and its users.
AGENT_TOKEN = "pipeline-agent-token"
PROM_TOKEN = "pipeline-prometheus-token"
OTHER_TOKEN = "pipeline-other-token"
PROM_USER = "system:serviceaccount:monitoring:prometheus-k8s"
OTHER_USER = "system:serviceaccount:default:someone"

procs = []  # (name, Popen)


def log(msg):
    print(f"pipeline: {msg}", flush=True)


def fail(msg):
    log(f"FAILED: {msg}")
    for name, p in procs:
        path = getattr(p, "log_path", None)
        if path and os.path.exists(path):
            with open(path, errors="replace") as f:
                tail = f.read()[-3000:]
            print(f"----- {name} log (tail) -----\n{tail}", flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(name, argv, work, env=None):
    path = os.path.join(work, f"{name}.log")
    out = open(path, "w")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env if env is not None else clean_env(), cwd=work)
    p.log_path = path
    procs.append((name, p))
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KUBELET_SENTINEL_")
           and k not in ("NODE_NAME", "KUBERNETES_SERVICE_HOST")}
    env["NO_COLOR"] = "1"
    return env


def http(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


# The agents' certificates are self-signed (made at each start): the token is what
# protects the data, as with the shipped ServiceMonitor's insecureSkipVerify.
INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE


def agent_get(a, path, token=PROM_TOKEN, timeout=3):
    """GET https://<agent>/<path> with a bearer token: (status, body); HTTP errors too."""
    req = urllib.request.Request(f"https://127.0.0.1:{a.port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=INSECURE) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class FakeApi(BaseHTTPRequestHandler):
    """The few endpoints the agents use: empty pod/namespace/node lists (a watch ends at
    once and is re-opened by the agent), SubjectAccessReviews (only Prometheus may get
    /metrics; every kubelet-identity action is denied) and TokenReviews."""

    protocol_version = "HTTP/1.1"
    reviews = {"token": 0, "access": 0}

    def log_message(self, *args):  # quiet
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if self.headers.get("Authorization") == f"Bearer {AGENT_TOKEN}":
            return True
        self.reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "Unauthorized", "code": 401, "message": "Unauthorized"})
        return False

    def do_GET(self):
        if not self.authorized():
            return
        url = urllib.parse.urlparse(self.path)
        kinds = {"/api/v1/pods": "PodList", "/api/v1/namespaces": "NamespaceList",
                 "/api/v1/nodes": "NodeList"}
        if url.path not in kinds:
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404})
            return
        if "watch=true" in url.query or "watch=1" in url.query:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.reply(200, {"kind": kinds[url.path], "apiVersion": "v1",
                         "metadata": {"resourceVersion": "1"}, "items": []})

    def do_POST(self):
        if not self.authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        spec = body.get("spec", {})
        path = urllib.parse.urlparse(self.path).path
        if path == "/apis/authentication.k8s.io/v1/tokenreviews":
            FakeApi.reviews["token"] += 1
            users = {PROM_TOKEN: PROM_USER, OTHER_TOKEN: OTHER_USER}
            user = users.get(spec.get("token"))
            status = ({"authenticated": True, "user": {"username": user, "groups": ["system:serviceaccounts", "system:authenticated"]}}
                      if user else {"authenticated": False, "error": "invalid bearer token"})
            self.reply(201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                             "metadata": {}, "spec": spec, "status": status})
        elif path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            nra = spec.get("nonResourceAttributes") or {}
            if nra:
                FakeApi.reviews["access"] += 1
            allowed = (spec.get("user") == PROM_USER and nra.get("path") == "/metrics"
                       and nra.get("verb") == "get")
            self.reply(201, {"kind": "SubjectAccessReview",
                             "apiVersion": "authorization.k8s.io/v1", "metadata": {},
                             "spec": spec, "status": {"allowed": allowed}})
        else:
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404})


def start_fake_api(work):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = os.path.join(work, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                f"    server: http://127.0.0.1:{server.server_address[1]}\n"
                f"users:\n- name: agent\n  user:\n    token: {AGENT_TOKEN}\n"
                "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: agent\n"
                "current-context: fake\n")
    log(f"fake Kubernetes API on 127.0.0.1:{server.server_address[1]}")
    return server, kubeconfig


def wait_for(what, check, timeout=WAIT, interval=0.25):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            ok, last = check()
            if ok:
                return last
        except Exception as e:  # noqa: BLE001 - a server still starting
            last = repr(e)
        time.sleep(interval)
    fail(f"{what} (last seen: {str(last)[:1500]})")


def prom_query(prom, expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http(url)
    data = json.loads(body)
    if data.get("status") != "success":
        raise RuntimeError(f"{expr}: {data}")
    return data["data"]


def ensure_binaries():
    if os.path.exists(AGENT) and os.path.exists(STANDIN):
        return
    log("building the agent and the stand-in kubelet (debug, --features standin)")
    subprocess.run(["cargo", "build", "--locked", "--features", "standin", "--bins"],
                   cwd=ROOT, check=True)


def standin_config(path, port, healthz, read_only):
    with open(path, "w") as f:
        f.write(
            "apiVersion: kubelet.config.k8s.io/v1beta1\n"
            "kind: KubeletConfiguration\n"
            f"address: 127.0.0.1\nport: {port}\n"
            f"healthzBindAddress: 127.0.0.1\nhealthzPort: {healthz}\n"
            f"readOnlyPort: {read_only}\n"
            "authentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\n"
            "authorization:\n  mode: AlwaysAllow\n"
        )


def fixture_copy(name, work):
    """Copy tests/fixtures/<name> with its links.txt applied (symlinks kept out of git)."""
    src = os.path.join(ROOT, "tests", "fixtures", name)
    dst = os.path.join(work, name)
    shutil.copytree(src, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("modes.txt", "owners.txt", "sparse.txt",
                                                  "decoys.txt", "links.txt", "_decoys"))
    links = os.path.join(src, "links.txt")
    if os.path.exists(links):
        for line in open(links):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            link, target = line.split(None, 1)
            at = os.path.join(dst, link.lstrip("/"))
            os.makedirs(os.path.dirname(at), exist_ok=True)
            if not os.path.lexists(at):
                os.symlink(target.strip(), at)
    return dst


def fixture_kubelet(root):
    proc = os.path.join(root, "proc")
    for pid in sorted(os.listdir(proc)):
        cmd = os.path.join(proc, pid, "cmdline")
        if pid.isdigit() and os.path.exists(cmd):
            argv = open(cmd, "rb").read().split(b"\0")
            if argv and argv[0].endswith(b"kubelet"):
                return pid
    fail(f"no kubelet in {proc}")


def agent(name, work, node, extra):
    """An agent protected as the default install is: HTTPS (self-signed) and
    --metrics-auth kubernetes against the fake API (its kubeconfig in `work`)."""
    port = free_port()
    state = os.path.join(work, f"state-{name}")
    argv = [AGENT, "serve", "--kubeconfig", os.path.join(work, "kubeconfig"),
            "--listen-address", f"127.0.0.1:{port}", "--health-listen-address", "127.0.0.1:0", "--node-name", node,
            "--state-dir", state, "--interval", "2s", "--watch-interval", "200ms",
            "--metrics-auth", "kubernetes", "--metrics-tls-self-signed"] + extra
    p = start(name, argv, work)
    p.port = port
    return p


def rules_for_test(work):
    src = os.path.join(ROOT, "alerts", "kubelet-sentinel.rules.yaml")
    text = open(src).read()
    shortened, n = re.subn(r"(?m)^(\s+for:\s*)\S+\s*$", r"\g<1>0s", text)
    if n == 0:
        fail("no `for:` in the rules? the substitution found nothing")
    dst = os.path.join(work, "rules.yaml")
    with open(dst, "w") as f:
        f.write(shortened)
    return dst, n


def firing(am):
    status, body = http(f"{am}/api/v2/alerts?active=true&silenced=false&inhibited=false")
    return json.loads(body)


def has_alert(alerts, name, **labels):
    for a in alerts:
        ls = a.get("labels", {})
        if ls.get("alertname") == name and all(ls.get(k) == v for k, v in labels.items()):
            return True
    return False


def dashboard_queries():
    """(dashboard file, panel title, expr) for every panel target of every dashboard."""
    out = []
    ddir = os.path.join(ROOT, "dashboards")
    for fname in sorted(os.listdir(ddir)):
        if not fname.endswith(".json"):
            continue
        dash = json.load(open(os.path.join(ddir, fname)))

        def walk(panels):
            for p in panels or []:
                yield p
                yield from walk(p.get("panels"))

        for p in walk(dash.get("panels")):
            for t in p.get("targets") or []:
                expr = t.get("expr")
                if expr and not t.get("hide"):
                    out.append((fname, p.get("title", "?"), expr))
    return out


def substitute(expr, node):
    """Grafana's variables and macros, as a dashboard user would have them."""
    for var, value in [
        ("${__rate_interval}", "1m"), ("$__rate_interval", "1m"),
        ("${__interval}", "1m"), ("$__interval", "1m"),
        ("${__range}", "5m"), ("$__range", "5m"),
        ("${cluster:regex}", ".*"), ("${cluster}", ".*"), ("$cluster", ".*"),
        ("${node:regex}", node), ("${node}", node), ("$node", node),
    ]:
        expr = expr.replace(var, value)
    if "$" in expr:
        fail(f"unsubstituted variable in a dashboard query: {expr}")
    return expr


def main():
    for tool in (PROMETHEUS, ALERTMANAGER):
        if not os.path.exists(tool):
            fail(f"{tool} is missing (Debian packages prometheus, prometheus-alertmanager)")
    ensure_binaries()
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="ks-pipeline-")
    try:
        run(work)
    finally:
        for _, p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)
    log(f"passed in {time.time() - t0:.1f}s")


# kube-state-metrics' node list (`kube_node_info`, its labels as in kube-state-metrics'
# docs/metrics/cluster/node-metrics.md), served as a static exposition: the three agents'
# nodes and one node no agent runs on, so that the fleet rules' agent-missing count, the
# KubeletSentinelAgentMissingOnNodes alert and the fleet dashboard's panel have data.
NO_AGENT = "pipeline-no-agent"


class FakeKsm(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = "".join(
            f'kube_node_info{{node="{n}",os_image="Debian GNU/Linux 12 (bookworm)",'
            f'kubelet_version="v1.31.0",container_runtime_version="containerd://1.7.0"}} 1\n'
            for n in (LIVE, DRIFT, EMPTY, NO_AGENT)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_fake_ksm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKsm)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def run(work):
    start_fake_api(work)
    ksm_port = start_fake_ksm()
    # 1. An insecure live kubelet (the stand-in) and its agent.
    kport, khealthz, kro = free_port(), free_port(), free_port()
    kconf = os.path.join(work, "kubelet-config.yaml")
    standin_config(kconf, kport, khealthz, kro)
    ready = os.path.join(work, "kubelet-ready.json")
    kubelet = start("standin-kubelet", [STANDIN, f"--config={kconf}", "--standin-ready-file", ready],
                    work, env={})
    wait_for("the stand-in kubelet to listen", lambda: (os.path.exists(ready) and os.path.getsize(ready) > 0, None), 20)
    # --metrics-probe-durations: the node dashboard's per-step durations panel has data.
    live = agent("agent-live", work, LIVE, ["--kubelet-pid", str(kubelet.pid), "--live-probes", "on",
                                            "--metrics-probe-durations"])

    # 2. A hardened fixture node whose kubelet start time is known (proc/stat btime), so
    #    that pending_restart can be judged; edited once its baseline is taken.
    droot = fixture_copy("kubeadm-hardened", work)
    dpid = fixture_kubelet(droot)
    stat = open(os.path.join(droot, "proc", dpid, "stat")).read()
    ticks = int(stat[stat.rindex(")") + 1:].split()[19])
    btime = int(time.time()) - ticks // 100
    with open(os.path.join(droot, "proc", "stat"), "w") as f:
        f.write(f"cpu  1 0 1 100 0 0 0 0 0 0\nbtime {btime}\nprocesses 100\n")
    drift = agent("agent-drift", work, DRIFT, ["--host-root", droot, "--live-probes", "off",
                                               "--metrics-control-states", "all"])

    # 3. A node without a kubelet.
    eroot = fixture_copy("no-kubelet", work)
    empty = agent("agent-empty", work, EMPTY, ["--host-root", eroot, "--live-probes", "off"])

    for a in (live, drift, empty):
        wait_for(f"{a.log_path} ready", lambda a=a: (agent_get(a, "/readyz", token=None)[0] == 200, None), 30)

    # The two shapes of control_status: 0-valued series only with --metrics-control-states all.
    zero = re.compile(r"^kubelet_sentinel_control_status\{[^}]*\} 0(\.0)?$", re.M)
    for a, want in ((live, False), (drift, True)):
        body = wait_for(f"{a.log_path}: control_status series", lambda a=a: (
            (lambda b: ("kubelet_sentinel_control_status{" in b, b))(agent_get(a, "/metrics")[1])), 30)
        if bool(zero.search(body)) != want:
            fail(f"{a.log_path}: 0-valued control_status series {'missing' if want else 'present'} "
                 f"({'full StateSet' if want else 'default shape'})")

    # The drift node: baseline taken at its first evaluation; wait > 1 s past the
    # kubelet's start (the pending-restart grace), then open the read-only port in the file.
    # The start the agent sees is btime + ticks/100, up to a second after `btime` was
    # written (btime is whole seconds): wait from that start, not from the baseline, or a
    # fast run edits the file inside the grace and the edit is (rightly) not pending.
    wait_for("the drift node's baseline", lambda: (
        "kubelet_sentinel_baseline_info" in agent_get(drift, "/metrics")[1], None), 30)
    kubelet_start = btime + ticks / 100
    time.sleep(max(1.2, kubelet_start + 1.2 - time.time()))
    cfg = os.path.join(droot, "var", "lib", "kubelet", "config.yaml")
    text = open(cfg).read()
    # A critical control fails (its own alert, not a regression alert), a medium one
    # regresses, another drifts and still passes (a tighter PID limit; the idle streaming
    # timeout would not do: without a kubelet version that control is unknown).
    for key, value in [("readOnlyPort", "10255"), ("protectKernelDefaults", "false"),
                       ("podPidsLimit", "2048")]:
        text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        if n != 1:
            fail(f"the fixture's config.yaml has no {key} line")
    with open(cfg + ".new", "w") as f:
        f.write(text)
    os.rename(cfg + ".new", cfg)
    log("edited the drift node's config.yaml (replaced by rename)")

    # Alertmanager and Prometheus.
    am_port, prom_port = free_port(), free_port()
    am_conf = os.path.join(work, "alertmanager.yml")
    with open(am_conf, "w") as f:
        f.write("route:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\n"
                "receivers:\n  - name: blackhole\n")
    start("alertmanager", [ALERTMANAGER, f"--config.file={am_conf}",
                           f"--storage.path={os.path.join(work, 'am-data')}",
                           f"--web.listen-address=127.0.0.1:{am_port}",
                           "--cluster.listen-address=", "--log.level=warn"], work)
    rules, n = rules_for_test(work)
    targets = ", ".join(f'"127.0.0.1:{a.port}"' for a in (live, drift, empty))
    prom_conf = os.path.join(work, "prometheus.yml")
    with open(prom_conf, "w") as f:
        f.write(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules}\n"
            "alerting:\n  alertmanagers:\n"
            f"    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\n"
            "scrape_configs:\n  - job_name: kubelet-sentinel\n"
            "    scheme: https\n    tls_config:\n      insecure_skip_verify: true\n"
            f"    authorization:\n      credentials: {PROM_TOKEN}\n"
            f"    static_configs:\n      - targets: [{targets}]\n"
            "  - job_name: unauthenticated\n"
            "    scheme: https\n    tls_config:\n      insecure_skip_verify: true\n"
            "    authorization:\n      credentials: stolen-or-expired\n"
            f"    static_configs:\n      - targets: [{targets}]\n"
            "  - job_name: kube-state-metrics\n"
            f"    static_configs:\n      - targets: [\"127.0.0.1:{ksm_port}\"]\n"
        )
    start("prometheus", [PROMETHEUS, f"--config.file={prom_conf}",
                         f"--storage.tsdb.path={os.path.join(work, 'prom-data')}",
                         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], work)
    prom, am = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
    log(f"prometheus {prom}, alertmanager {am}, {n} `for:` shortened to 0s")

    # 1. Targets up.
    def targets_up():
        r = prom_query(prom, 'up{job="kubelet-sentinel"} == 1')["result"]
        return len(r) == 3, r
    wait_for("all three agent targets up", targets_up)
    log("3 targets up")

    # 1b. Protected metrics: Prometheus's token over HTTPS is what got those targets up; a
    #     token the API does not authenticate gets 401 on every target, a valid token of a
    #     user without `get /metrics` gets 403, no token 401; the probes stay open.
    def unauthenticated_down():
        r = prom_query(prom, 'up{job="unauthenticated"} == 0')["result"]
        return len(r) == 3, r
    wait_for("the unauthenticated job's three targets down", unauthenticated_down)
    _, body = http(f"{prom}/api/v1/targets")
    errors = [t.get("lastError", "") for t in json.loads(body)["data"]["activeTargets"]
              if t["labels"].get("job") == "unauthenticated"]
    if len(errors) != 3 or not all("401" in e for e in errors):
        fail(f"the unauthenticated job's scrapes should fail with 401: {errors}")
    for a in (live, drift, empty):
        for token, want in [(None, 401), (OTHER_TOKEN, 403), (PROM_TOKEN, 200)]:
            code, _ = agent_get(a, "/metrics", token=token)
            if code != want:
                fail(f"{a.log_path}: /metrics with token {token!r} answered {code}, not {want}")
        if agent_get(a, "/healthz", token=None)[0] != 200:
            fail(f"{a.log_path}: /healthz needs no token")
        try:
            http(f"http://127.0.0.1:{a.port}/metrics", timeout=2)
            fail(f"{a.log_path}: /metrics answered plain HTTP")
        except (urllib.error.URLError, HTTPException, OSError):
            pass
    if FakeApi.reviews["token"] == 0 or FakeApi.reviews["access"] == 0:
        fail(f"no TokenReview or SubjectAccessReview reached the fake API: {FakeApi.reviews}")
    log(f"/metrics protected: 401 without or with a bad token, 403 for a user without get /metrics, "
        f"200 for Prometheus ({FakeApi.reviews['token']} TokenReviews, "
        f"{FakeApi.reviews['access']} SubjectAccessReviews for /metrics)")

    # 2. Alerts in Alertmanager.
    expected = [
        ("KubeletSentinelCriticalControlFailing", {"node": LIVE, "control": "anonymous-auth-disabled"}),
        ("KubeletSentinelCriticalControlFailing", {"node": LIVE, "control": "authorization-mode-webhook"}),
        ("KubeletSentinelCriticalControlFailing", {"node": LIVE, "control": "read-only-port-disabled"}),
        ("KubeletSentinelCriticalControlFailing", {"node": LIVE, "control": "kubelet-api-rejects-anonymous"}),
        ("KubeletSentinelCriticalControlFailing", {"node": DRIFT, "control": "read-only-port-disabled"}),
        ("KubeletSentinelControlRegressed", {"node": DRIFT, "control": "protect-kernel-defaults"}),
        ("KubeletSentinelControlDrift", {"node": DRIFT, "control": "pod-pids-limit-set"}),
        ("KubeletSentinelConfigDrift", {"node": DRIFT}),
        ("KubeletSentinelConfigPendingRestart", {"node": DRIFT}),
        ("KubeletSentinelKubeletNotFound", {"node": EMPTY}),
        # The fleet rules: one node kube-state-metrics lists has no agent.
        ("KubeletSentinelAgentMissingOnNodes", {}),
    ]

    def alerts_arrived():
        alerts = firing(am)
        missing = [(n, l) for n, l in expected if not has_alert(alerts, n, **l)]
        return not missing, {"missing": missing,
                             "present": sorted({a["labels"].get("alertname") for a in alerts})}
    wait_for("the expected alerts in Alertmanager", alerts_arrived)
    log(f"{len(expected)} expected alerts reached Alertmanager")
    # And none on the hardened drift node for the controls it still passes.
    alerts = firing(am)
    missing = [a for a in alerts if a["labels"].get("alertname") == "KubeletSentinelAgentMissingOnNodes"]
    if len(missing) != 1 or NO_AGENT not in missing[0]["annotations"].get("description", ""):
        fail(f"KubeletSentinelAgentMissingOnNodes should name {NO_AGENT} once: {missing}")
    counts = prom_query(prom, "cluster:kubelet_sentinel_nodes_without_agent:count")["result"]
    if [c["value"][1] for c in counts] != ["1"]:
        fail(f"cluster:kubelet_sentinel_nodes_without_agent:count should be 1: {counts}")
    log(f"fleet rules: 1 node without an agent ({NO_AGENT}), alerted with its name")
    if has_alert(alerts, "KubeletSentinelCriticalControlFailing", node=DRIFT, control="anonymous-auth-disabled"):
        fail("anonymous-auth-disabled alert on the hardened node")

    # 3. Every dashboard panel query returns data, once Prometheus holds a few scrapes of
    #    each target (rate()/increase() over [1m] need two samples; a dashboard is looked
    #    at after some history, not at the first scrape).
    wait_for("five scrapes of every target", lambda: (
        len(prom_query(prom, 'count_over_time(up{job="kubelet-sentinel"}[1m]) >= 5')["result"]) == 3,
        None))
    queries = dashboard_queries()
    if not queries:
        fail("no dashboard queries found in dashboards/")

    def panels_without_data():
        empty_panels = []
        for fname, title, expr in queries:
            nodes = [".*"]
            if "node" in fname:
                # The drift node (full StateSet, no live probes): the shape-dependent queries.
                shaped = "kubelet_sentinel_control_status" in expr or "kubelet_sentinel_control_drift" in expr
                nodes = [LIVE, DRIFT] if shaped else [LIVE]
            for node in nodes:
                q = substitute(expr, node)
                try:
                    result = prom_query(prom, q)["result"]
                except Exception as e:  # noqa: BLE001
                    empty_panels.append((fname, title, q, repr(e)))
                    continue
                if not result:
                    empty_panels.append((fname, title, q, "no data"))
        return not empty_panels, "\n".join(
            f"  {f} / {t}: {q}  -> {why}" for f, t, q, why in empty_panels)
    wait_for("every dashboard panel query to return data", panels_without_data, timeout=30, interval=1)
    log(f"{len(queries)} dashboard panel queries all returned data")

    # 4. An agent that goes away: AgentDown for its instance.
    stop(empty)
    instance = f"127.0.0.1:{empty.port}"
    wait_for("KubeletSentinelAgentDown in Alertmanager",
             lambda: (has_alert(firing(am), "KubeletSentinelAgentDown", instance=instance), None))
    log("KubeletSentinelAgentDown fired for the stopped agent")


if __name__ == "__main__":
    main()
