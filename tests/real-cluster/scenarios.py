"""The checks tests/real-cluster/cluster.py runs on its cluster, in order (see its docstring
and docs/real-cluster.md). Each step raises CheckFailed with what it saw; nothing is
retried beyond waiting for the cluster to settle (bounded)."""
import base64
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

NS = "kubelet-sentinel"
AGENT_PORT = 10358
UNLABELLED_NS = "sentinel-unlabelled"


class Ctx:
    def __init__(self, c, log, fail):
        self.c = c
        self.log = log
        self.fail = fail
        self.repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.timings = {}

    def expect(self, cond, what):
        if not cond:
            raise self.fail(what)


# ---------------------------------------------------------------- helpers

def agent_pod(x, ns):
    pods = x.c.kjson("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=kubelet-sentinel")["items"]
    return pods[0] if pods else None


def wait_agent_ready(x, ns, what, timeout=180):
    t = time.time()

    def ready():
        p = agent_pod(x, ns)
        if p is None:
            return None
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        return p if conds.get("Ready") == "True" else None
    try:
        pod = x.c.wait_for("%s: the agent pod Ready" % what, ready, timeout, procs=x.c.ALL)
    except x.fail:
        p = agent_pod(x, ns)
        ev = x.c.kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp", check=False).stdout
        raise x.fail("%s: agent not Ready in %ss; pod: %s\nevents:\n%s" % (
            what, timeout, json.dumps(p and p.get("status"), indent=1)[:3000], ev[-3000:]))
    cs = pod["status"]["containerStatuses"][0]
    started = cs["state"]["running"]["startedAt"]
    x.log("%s: agent %s Ready %.1fs after the apply (image %s, container started %s)" % (
        what, pod["metadata"]["name"], time.time() - t, cs["image"], started))
    return pod


def probe_warnings(x, ns, pod):
    """Warning events the kubelet's prober recorded for the pod (reason Unhealthy)."""
    ev = x.c.kjson("get", "events", "-n", ns, "--field-selector",
                   "involvedObject.name=%s,type=Warning" % pod["metadata"]["name"])["items"]
    return [e["message"] for e in ev if e.get("reason") in ("Unhealthy", "ProbeWarning")]


def https_status(url, token=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def check_report(x, ns):
    """`check --format json` run in the agent's pod (its environment: API access, policy)."""
    pod = agent_pod(x, ns)["metadata"]["name"]
    r = x.c.kubectl("exec", "-n", ns, pod, "--", "/kubelet-sentinel", "check", "--format", "json",
                    "--fail-on", "never", timeout=120)
    rep = json.loads(r.stdout)
    return {c["id"]: c for c in rep["controls"]}, rep


def expect_control(x, controls, cid, status, *needles):
    c = controls.get(cid)
    x.expect(c is not None, "no control %s in the report" % cid)
    text = "%s | %s | %s" % (c.get("observed"), c.get("reason"), c.get("source"))
    x.expect(c["status"] == status, "%s: %s, expected %s (%s)" % (cid, c["status"], status, text))
    for n in needles:
        x.expect(n in text, "%s: %r not in %r" % (cid, n, text))
    x.log("  %-34s %-7s %s" % (cid, c["status"], text[:150]))


# ---------------------------------------------------------------- steps

def install_crds(x):
    crd_dir = os.environ.get("REAL_CLUSTER_CRDS")
    x.expect(crd_dir and os.path.isdir(crd_dir), "no Prometheus Operator CRDs (REAL_CLUSTER_CRDS)")
    for kind in ("servicemonitors", "podmonitors", "prometheusrules"):
        x.c.kubectl("apply", "--server-side", "-f",
                    os.path.join(crd_dir, "monitoring.coreos.com_%s.yaml" % kind))
    x.c.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                "crd/servicemonitors.monitoring.coreos.com", "crd/podmonitors.monitoring.coreos.com",
                "crd/prometheusrules.monitoring.coreos.com")
    x.log("Prometheus Operator CRDs installed (%s)" % os.path.basename(os.path.dirname(crd_dir.rstrip("/"))))


def tokens(x):
    """Prometheus's identity as manifests/rbac.yaml names it (prometheus-k8s in monitoring),
    and one without the role."""
    x.c.kubectl("create", "namespace", "monitoring")
    x.c.kubectl("create", "serviceaccount", "prometheus-k8s", "-n", "monitoring")
    x.c.kubectl("create", "serviceaccount", "no-metrics-role", "-n", "monitoring")
    tok = {}
    for sa in ("prometheus-k8s", "no-metrics-role"):
        tok[sa] = x.c.kubectl("create", "token", sa, "-n", "monitoring", "--duration=2h").stdout.strip()
        path = os.path.join(x.c.base, sa + ".token")
        with open(path, "w") as f:
            f.write(tok[sa])
    return tok


def overlay(x, name="overlay", components=("podmonitor", "running-config")):
    """manifests/ + components (default: the PodMonitor and running-config ones), the image
    replaced by the one imported into containerd (never pulled)."""
    d = os.path.join(x.c.base, name)
    os.makedirs(d)
    rel = os.path.relpath(os.path.join(x.repo, "manifests"), d)
    image, tag = x.c.agent_image.rsplit(":", 1)
    with open(os.path.join(d, "kustomization.yaml"), "w") as f:
        f.write("""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [%s]
components: [%s]
images:
  - name: ghcr.io/kubelet-sentinel/kubelet-sentinel
    newName: %s
    newTag: "%s"
patches:
  - target: {kind: DaemonSet, name: kubelet-sentinel}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: Never
""" % (rel, ", ".join("%s/%s" % (rel, c) for c in components), image, tag))
    return d


def prometheus(x, scraper_token_file):
    """Debian's prometheus, four jobs against the agent: Prometheus's token, none, a token
    without the role, the PodMonitor component's long-lived scraper token."""
    d = os.path.join(x.c.base, "prometheus")
    os.makedirs(d)
    target = "%s:%d" % (x.c.node_ip, AGENT_PORT)
    jobs = [("with-role", os.path.join(x.c.base, "prometheus-k8s.token")),
            ("no-token", None),
            ("without-role", os.path.join(x.c.base, "no-metrics-role.token")),
            ("scraper-secret", scraper_token_file)]
    cfg = "global: {scrape_interval: 2s, scrape_timeout: 1s}\nscrape_configs:\n"
    for job, tok in jobs:
        cfg += "  - job_name: %s\n    scheme: https\n    tls_config: {insecure_skip_verify: true}\n" % job
        if tok:
            cfg += "    authorization: {credentials_file: %s}\n" % tok
        cfg += "    static_configs: [{targets: ['%s']}]\n" % target
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(cfg)
    x.c.start("prometheus", ["prometheus", "--config.file=" + os.path.join(d, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(d, "data"),
                             "--web.listen-address=127.0.0.1:9090"])
    return [j for j, _ in jobs]


def prom_get(path):
    with urllib.request.urlopen("http://127.0.0.1:9090" + path, timeout=10) as r:
        return json.loads(r.read())


def prom_query(q):
    return prom_get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))["data"]["result"]


def scrape(x, jobs):
    want = {"with-role": ("up", ""), "no-token": ("down", "401"),
            "without-role": ("down", "403"), "scraper-secret": ("up", "")}

    def settled():
        ts = prom_get("/api/v1/targets")["data"]["activeTargets"]
        seen = {t["labels"]["job"]: (t["health"], t.get("lastError", "")) for t in ts}
        if all(seen.get(j, ("unknown",))[0] == want[j][0] for j in jobs):
            return seen
        return None
    seen = x.c.wait_for("Prometheus's four scrapes to settle", settled, 90, procs=("prometheus",))
    for j in jobs:
        health, err = seen[j]
        x.expect(want[j][1] in err, "job %s: lastError %r, expected %s" % (j, err, want[j][1]))
        x.log("  prometheus job %-15s %s %s" % (j, health, err))
    # and by hand, the exact status codes and the WWW-Authenticate of a refusal
    url = "https://%s:%d/metrics" % (x.c.node_ip, AGENT_PORT)
    tok = {sa: open(os.path.join(x.c.base, sa + ".token")).read() for sa in ("prometheus-k8s", "no-metrics-role")}
    s200, body = https_status(url, tok["prometheus-k8s"])
    s401, _ = https_status(url)
    s403, _ = https_status(url, tok["no-metrics-role"])
    x.expect((s200, s401, s403) == (200, 401, 403), "GET /metrics: %s/%s/%s, expected 200/401/403" % (s200, s401, s403))
    x.expect("kubelet_sentinel_control_status" in body, "a 200 without kubelet_sentinel_control_status")
    x.log("  GET /metrics: 200 with prometheus-k8s's token, 401 without a token, 403 with no-metrics-role's")
    up = prom_query('up{job="with-role"}')
    x.expect(up and up[0]["value"][1] == "1", "up{job=with-role}: %s" % up)


def metric_status(cid):
    r = prom_query('kubelet_sentinel_control_status{job="with-role",control="%s"} == 1' % cid)
    return r[0]["metric"]["status"] if r else None


def controls_before(x):
    controls, rep = check_report(x, NS)
    x.log("controls (check --format json in the agent's pod; kubelet %s found: %s):" % (
        rep["kubelet"].get("version"), rep["kubelet"].get("discovery")))
    x.expect(rep["kubelet"].get("discovery") == "found", "kubelet not found: %s" % rep["kubelet"])
    expect_control(x, controls, "node-authorizer-enabled", "pass", "authorization=Node,RBAC", "NodeRestriction enabled")
    expect_control(x, controls, "kubelet-credential-node-scoped", "pass", "system:node:" + x.c.node)
    expect_control(x, controls, "kubelet-identity-least-privilege", "pass", "allowed only by node rules")
    expect_control(x, controls, "pod-security-enforced", "pass")
    expect_control(x, controls, "no-host-takeover-pods", "pass")
    expect_control(x, controls, "running-config-matches-disk", "pass", "nodes/configz")
    expect_control(x, controls, "authentication-webhook-enabled", "pass")
    expect_control(x, controls, "authorization-mode-webhook", "pass")
    expect_control(x, controls, "anonymous-auth-disabled", "pass")
    expect_control(x, controls, "read-only-port-disabled", "pass")
    # /metrics says the same (Prometheus's view)
    for cid in ("node-authorizer-enabled", "kubelet-identity-least-privilege", "pod-security-enforced",
                "no-host-takeover-pods", "running-config-matches-disk"):
        got = x.c.wait_for("%s in Prometheus" % cid, lambda: metric_status(cid), 30)
        x.expect(got == "pass", "Prometheus: %s is %s" % (cid, got))
    return controls


PRIVILEGED_POD = """apiVersion: v1
kind: Pod
metadata: {name: host-takeover, namespace: %s}
spec:
  hostNetwork: true
  hostPID: true
  automountServiceAccountToken: false
  containers:
    - name: pause
      image: %s
      imagePullPolicy: Never
      securityContext: {privileged: true}
"""


def controls_after_privileged_pod(x):
    x.c.kubectl("create", "namespace", UNLABELLED_NS)
    x.c.kubectl("apply", "-f", "-", input=PRIVILEGED_POD % (UNLABELLED_NS, x.c.pause_image))
    x.c.kubectl("wait", "-n", UNLABELLED_NS, "--for=condition=Ready", "pod/host-takeover", "--timeout=90s")
    x.log("privileged pod %s/host-takeover running (hostNetwork, hostPID) in an unlabelled namespace" % UNLABELLED_NS)
    # the agent's watches see it; its next evaluation (every few seconds) publishes it
    x.c.wait_for("pod-security-enforced to fail on /metrics", lambda: metric_status("pod-security-enforced") == "fail", 90)
    x.c.wait_for("no-host-takeover-pods to fail on /metrics", lambda: metric_status("no-host-takeover-pods") == "fail", 90)
    controls, _ = check_report(x, NS)
    expect_control(x, controls, "pod-security-enforced", "fail", UNLABELLED_NS)
    expect_control(x, controls, "no-host-takeover-pods", "fail", "host-takeover")
    risky = prom_query('kubelet_sentinel_risky_pod_info{job="with-role",pod="host-takeover"}')
    reasons = sorted(r["metric"]["reason"] for r in risky)
    x.expect(reasons == ["host_network", "host_pid", "privileged"], "risky_pod_info reasons: %s" % reasons)
    x.log("  kubelet_sentinel_risky_pod_info{pod=host-takeover}: %s" % ", ".join(reasons))
    x.c.kubectl("delete", "namespace", UNLABELLED_NS, "--wait=true", "--timeout=90s")


def kustomize_phase(x):
    d = overlay(x)
    t = time.time()
    r = x.c.kubectl("apply", "-k", d)
    x.log("kubectl apply -k (manifests + podmonitor + running-config components): %d objects" % len(r.stdout.splitlines()))
    pod = wait_agent_ready(x, NS, "kustomize")
    x.timings["kustomize_ready"] = time.time() - t
    warnings = probe_warnings(x, NS, pod)
    x.log("  probe warnings at start: %d %s" % (len(warnings), warnings[:3]))
    x.expect(not warnings, "the agent's start recorded probe warnings: %s" % warnings)
    # the PodMonitor's token Secret, filled in by the token controller
    def secret_token():
        s = x.c.kjson("get", "secret", "-n", NS, "kubelet-sentinel-scraper-token")
        return s.get("data", {}).get("token")
    tok = x.c.wait_for("the scraper token Secret filled in", secret_token, 60)
    scraper = os.path.join(x.c.base, "scraper.token")
    with open(scraper, "w") as f:
        f.write(base64.b64decode(tok).decode())
    jobs = prometheus(x, scraper)
    scrape(x, jobs)
    controls_before(x)
    controls_after_privileged_pod(x)
    delete_clean(x, d, ["--ignore-not-found"])
    # the base alone (the ServiceMonitor, no token Secret): apply, Ready, delete without a flag
    d = overlay(x, "overlay-base", components=[])
    x.c.kubectl("apply", "-k", d)
    wait_agent_ready(x, NS, "kustomize (manifests/ alone)")
    delete_clean(x, d, [])


def delete_clean(x, d, flags):
    t = time.time()
    r = x.c.kubectl("delete", "-k", d, "--wait=true", "--timeout=120s", *flags, check=False, timeout=180)
    x.expect(r.returncode == 0 and not r.stderr.strip(),
             "kubectl delete -k %s exited %d:\n%s%s" % (" ".join(flags), r.returncode, r.stdout, r.stderr))
    x.c.wait_for("namespace %s gone" % NS,
                 lambda: x.c.kubectl("get", "namespace", NS, check=False).returncode != 0, 120)
    left = x.c.kubectl("get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/name=kubelet-sentinel",
                       "-o", "name").stdout.split()
    x.expect(not left, "kubectl delete -k left: %s" % left)
    x.log("kubectl delete -k %s: exit 0, no error, namespace and cluster objects gone in %.1fs" % (
        " ".join(flags), time.time() - t))


def helm_phase(x):
    helm = os.environ.get("REAL_CLUSTER_HELM")
    x.expect(helm and os.access(helm, os.X_OK), "no helm (REAL_CLUSTER_HELM)")
    chart = os.path.join(x.repo, "charts/kubelet-sentinel")
    name, tag = x.c.agent_image.rsplit(":", 1)
    common = ["--set", "image.repository=" + name, "--set", "image.tag=" + tag,
              "--set", "image.pullPolicy=Never", "--wait", "--timeout", "3m"]
    # the chart README's way: a namespace labelled for the privileged level first
    x.c.kubectl("create", "namespace", NS)
    x.c.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=privileged",
                "pod-security.kubernetes.io/warn=privileged", "pod-security.kubernetes.io/audit=privileged")
    t = time.time()
    run = lambda *a: subprocess.run([helm] + list(a), capture_output=True, text=True, env=x.c.env, timeout=300)
    r = run("install", "kubelet-sentinel", chart, "--namespace", NS, *common)
    x.expect(r.returncode == 0, "helm install exited %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    x.log("helm install --wait: %.1fs" % (time.time() - t))
    pod = wait_agent_ready(x, NS, "helm")
    x.timings["helm_ready"] = time.time() - t
    warnings = probe_warnings(x, NS, pod)
    x.expect(not warnings, "helm: the agent's start recorded probe warnings: %s" % warnings)
    url = "https://%s:%d/metrics" % (x.c.node_ip, AGENT_PORT)
    tok = open(os.path.join(x.c.base, "prometheus-k8s.token")).read()
    status = x.c.wait_for("helm: /metrics 200 with Prometheus's token",
                          lambda: https_status(url, tok)[0] == 200, 60)
    x.expect(status, "helm: no 200")
    controls, _ = check_report(x, NS)
    expect_control(x, controls, "pod-security-enforced", "pass")
    expect_control(x, controls, "no-host-takeover-pods", "pass")
    r = run("uninstall", "kubelet-sentinel", "--namespace", NS, "--wait", "--timeout", "2m")
    x.expect(r.returncode == 0, "helm uninstall exited %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    def gone():
        left = x.c.kubectl("get", "all,serviceaccounts,secrets,configmaps,servicemonitors,prometheusrules",
                           "-n", NS, "-l", "app.kubernetes.io/name=kubelet-sentinel", "-o", "name").stdout.split()
        return not left or None
    # the DaemonSet's pod goes after it (garbage collection), within its grace period
    x.c.wait_for("helm uninstall: every object of the release gone", gone, 60)
    x.log("helm install -> Ready, uninstall clean (%.1fs)" % (time.time() - t))
    # --create-namespace (the old README's way) on a cluster whose default is restricted:
    # the DaemonSet's pods are refused
    r = run("install", "unlabelled", chart, "--namespace", "sentinel-helm-unlabelled", "--create-namespace",
            "--set", "image.repository=" + name, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=Never",
            "--set", "fullnameOverride=sentinel-unlabelled")
    x.expect(r.returncode == 0, "helm install --create-namespace exited %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))

    def refused():
        ev = x.c.kjson("get", "events", "-n", "sentinel-helm-unlabelled", "--field-selector", "reason=FailedCreate")["items"]
        return [e["message"] for e in ev if "violates PodSecurity" in e["message"]]
    msgs = x.c.wait_for("the unlabelled namespace's DaemonSet refused by Pod Security", refused, 60)
    x.log("  --create-namespace under a restricted default: %s" % msgs[0][:160])
    run("uninstall", "unlabelled", "--namespace", "sentinel-helm-unlabelled", "--wait")
    x.c.kubectl("delete", "namespace", NS, "sentinel-helm-unlabelled", "--wait=true", "--timeout=120s")


def run_all(c, log, fail):
    x = Ctx(c, log, fail)
    install_crds(x)
    tokens(x)
    kustomize_phase(x)
    helm_phase(x)
    log("all real-cluster checks passed; timings: %s" % ", ".join(
        "%s %.1fs" % kv for kv in sorted(x.timings.items())))
    return 0
