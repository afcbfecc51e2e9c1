#!/usr/bin/env python3
"""A real single-node Kubernetes cluster on this machine, and kubelet-sentinel deployed on it.

    python3 tests/real-cluster/cluster.py --image-archive DIR/kubelet-sentinel.oci.tar
        [--version v1.37.2] [--logs DIR] [--only-bringup]

What it brings up (see docs/real-cluster.md), all inside one fresh network, mount and pid
namespace (unshare), so that fixed ports (6443, 2379, 10250, ...) are the namespace's own,
every mount made in it disappears with it, and every process it started (containerd's
shims and the containers included) is killed by the kernel when it ends:

  - Debian's etcd (etcd-server) on 127.0.0.1;
  - kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one release, built
    from upstream source by tests/kubelet-truth/build-kubelet.sh (cached by version);
    `--authorization-mode=Node,RBAC`, `--enable-admission-plugins=NodeRestriction`,
    service-account signing keys, certificates made with openssl;
  - Debian's containerd (CRI) with a pause image built here (a static C program, imported
    with `ctr images import`: nothing is pulled), runc, and a bridge CNI config
    (containernetworking-plugins) so that the node's network is ready;
  - the kubelet of the same release (built the same way), Webhook authentication and
    authorization, registered as system:node:<NODE> with a client certificate.

On it: the project's image (an OCI archive) imported into containerd; `kubectl apply -k`
of manifests/ (+ the PodMonitor component) and then `helm install` of the chart each give a
Ready agent and are removed cleanly; Debian's prometheus scrapes the agent's protected
/metrics (200 / 401 / 403); the API-backed controls are read from the agent and checked
against what this cluster implies, then a privileged pod in an unlabelled namespace turns
both Pod Security controls to fail.

Must run as root. Exit status 0 when every check passed; 1 on the first failed check
(with what it saw; the components' logs are kept); 77 when not root (printed why).
"""
import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE = "sentinel-node"
NODE_IP = "10.201.0.1"          # on a port-less bridge in the namespace (the kubelet refuses loopback)
SERVICE_CIDR = "10.202.0.0/24"
KUBERNETES_SVC = "10.202.0.1"   # first address of the service range: the `kubernetes` Service
POD_CIDR = "10.203.0.0/24"
APISERVER = "https://127.0.0.1:6443"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
UNLABELLED_NS = "sentinel-unlabelled"     # scenarios.py's privileged pod
PROMETHEUS_OPERATOR = "v0.85.0"           # its CRDs (ServiceMonitor, PodMonitor, PrometheusRule)
AGENT_PORT = 10358
SKIP = 77

# Host paths the kubelet, containerd and the agent write to: each gets a directory of the
# run's temp dir bind-mounted over it inside the mount namespace (nothing touches the host's).
PRIVATE_DIRS = ["/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/containerd",
                "/run/containerd", "/var/lib/kubelet-sentinel", "/etc/kubernetes", "/opt/cni",
                "/etc/cni", "/var/lib/cni", "/run/netns"]

T0 = time.time()


def log(msg):
    print("real-cluster: [%5.1fs] %s" % (time.time() - T0, msg), flush=True)


class CheckFailed(Exception):
    pass


# ---------------------------------------------------------------- outer: namespaces, cleanup

def need_tools():
    pkgs = []
    for tool, pkg in (("etcd", "etcd-server"), ("containerd", "containerd"), ("runc", "runc"),
                      ("openssl", "openssl"), ("ip", "iproute2"), ("iptables", "iptables"),
                      ("unshare", "util-linux"), ("prometheus", "prometheus"), ("gcc", "gcc")):
        if shutil.which(tool) is None:
            pkgs.append(pkg)
    if not os.path.exists("/usr/lib/cni/bridge"):
        pkgs.append("containernetworking-plugins")
    if shutil.which("cc") and subprocess.run(["sh", "-c", "echo 'int main(void){return 0;}' | "
                                              "cc -static -x c -o /dev/null -"],
                                             capture_output=True).returncode != 0:
        pkgs.append("libc6-dev")
    if pkgs:
        log("installing Debian packages: " + " ".join(pkgs))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pkgs,
                       check=True, env=env, stdout=subprocess.DEVNULL)


def build_binaries(version):
    t = time.time()
    out = subprocess.run(
        ["bash", os.path.join(REPO, "tests/kubelet-truth/build-kubelet.sh"), version, "kubelet",
         "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"],
        capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit("building Kubernetes %s failed" % version)
    paths = out.stdout.split()
    log("Kubernetes %s binaries ready in %.1fs: %s" % (version, time.time() - t, os.path.dirname(paths[0])))
    return dict(zip(["kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"], paths))


def prometheus_operator_crds():
    """The CRDs of a pinned Prometheus Operator release, from its Go module (the module
    proxy; the namespace has no network): example/prometheus-operator-crd/."""
    work = tempfile.mkdtemp(prefix="real-cluster-gomod.")
    try:
        r = subprocess.run(["go", "mod", "download", "-json",
                            "github.com/prometheus-operator/prometheus-operator@" + PROMETHEUS_OPERATOR],
                           capture_output=True, text=True, cwd=work,
                           env=dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if r.returncode != 0:
        raise SystemExit("cannot download the Prometheus Operator %s module: %s%s" % (PROMETHEUS_OPERATOR, r.stdout, r.stderr))
    d = os.path.join(json.loads(r.stdout)["Dir"], "example/prometheus-operator-crd")
    if not os.path.isfile(os.path.join(d, "monitoring.coreos.com_podmonitors.yaml")):
        raise SystemExit("no PodMonitor CRD in %s" % d)
    return d


def find_helm():
    """helm as scripts/check-deploy.sh installs it (target/tools/k8s-layer-*/helm)."""
    tools = os.path.join(REPO, "target/tools")
    cands = sorted(os.path.join(tools, d, "helm") for d in (os.listdir(tools) if os.path.isdir(tools) else [])
                   if d.startswith("k8s-layer-") and not d.endswith(".tmp"))
    cands = [c for c in cands if os.access(c, os.X_OK)]
    if not cands:
        subprocess.run(["bash", os.path.join(REPO, "scripts/check-deploy.sh")], check=True,
                       stdout=subprocess.DEVNULL)
        return find_helm()
    return cands[-1]


def cgroup_dirs():
    """The cgroup directories runc and the kubelet create (v1 hierarchies and v2)."""
    found = set()
    for top in ("/sys/fs/cgroup",):
        if not os.path.isdir(top):
            continue
        for sub in [top] + [os.path.join(top, d) for d in os.listdir(top)]:
            for name in ("k8s.io", "kubepods", "kubepods.slice"):
                p = os.path.join(sub, name)
                if os.path.isdir(p):
                    found.add(p)
    return found


def remove_cgroups(dirs):
    for top in sorted(dirs):
        for dirpath, dirnames, _ in sorted(os.walk(top, topdown=False), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def outer(o):
    if os.geteuid() != 0:
        print("real-cluster: SKIP: needs root (namespaces, mounts, containerd)")
        return SKIP
    if not o.image_archive and not o.only_bringup:
        raise SystemExit("--image-archive is needed (only --only-bringup runs without)")
    if o.image_archive and not os.path.isfile(o.image_archive):
        raise SystemExit("no image archive: %s" % o.image_archive)
    need_tools()
    bins = build_binaries(o.version)
    crds, helm = None, None
    if not o.only_bringup:
        crds = prometheus_operator_crds()
        helm = find_helm()
    before = cgroup_dirs()
    # the mount points of the private directories, made on the host if missing (removed after)
    made = [d for d in PRIVATE_DIRS if not os.path.isdir(d)]
    for d in made:
        os.makedirs(d)
    base = tempfile.mkdtemp(prefix="real-cluster.")
    os.chmod(base, 0o755)
    logs = o.logs or os.path.join(base, "logs")
    os.makedirs(logs, exist_ok=True)
    argv = [sys.executable, os.path.abspath(__file__), "--inner", "--base", base, "--logs", logs,
            "--image-archive", os.path.abspath(o.image_archive) if o.image_archive else "",
            "--version", o.version,
            "--bins", json.dumps(bins)]
    if o.only_bringup:
        argv.append("--only-bringup")
    # --pid --fork: the runner is the namespace's init; when it ends the kernel kills every
    # process left in the namespace (containerd, its shims, the containers).
    # --kill-child: the runner is killed when unshare is (a signal to this script).
    env = dict(os.environ)
    if crds:
        env["REAL_CLUSTER_CRDS"] = crds
    if helm:
        env["REAL_CLUSTER_HELM"] = helm
    proc = subprocess.Popen(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
                             "--mount-proc", "--propagation", "private", "--"] + argv,
                            start_new_session=True, env=env)

    def forward(signo, _frame):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    rc = proc.wait()
    # What the namespace may have left on the host: cgroup directories (runc, the kubelet)
    # and, should any have leaked, mounts under the temp dir.
    remove_cgroups(cgroup_dirs() - before)
    with open("/proc/self/mountinfo") as f:
        leaked = [l.split()[4] for l in f if (" %s/" % base) in l]
    for m in sorted(leaked, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    if not o.logs and rc != 0:
        # keep the logs of a failed run
        kept = tempfile.mkdtemp(prefix="real-cluster-logs.")
        shutil.copytree(logs, kept, dirs_exist_ok=True)
        log("logs of the failed run: %s" % kept)
    shutil.rmtree(base, ignore_errors=True)
    for d in sorted(made, reverse=True):
        try:
            os.rmdir(d)
        except OSError as e:
            log("warning: cannot remove %s: %s" % (d, e))
    left = cgroup_dirs() - before
    if left:
        log("warning: cgroups left behind: %s" % " ".join(sorted(left)))
    log("done (exit %d) in %.1fs" % (rc, time.time() - T0))
    return rc


# ---------------------------------------------------------------- inner helpers

def run(args, check=True, capture=True, env=None, input=None, timeout=300):
    r = subprocess.run(args, capture_output=capture, text=True, env=env, input=input, timeout=timeout)
    if check and r.returncode != 0:
        raise CheckFailed("%s exited %d:\n%s%s" % (" ".join(args), r.returncode,
                                                    r.stdout or "", r.stderr or ""))
    return r


def die_with_parent():
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class Cluster:
    ALL = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet")

    def __init__(self, o):
        self.o = o
        self.base = o.base
        self.logs = o.logs
        self.bins = json.loads(o.bins)
        self.pki = os.path.join(self.base, "pki")
        self.procs = {}
        self.env = dict(os.environ, KUBECONFIG=os.path.join(self.base, "admin.kubeconfig"),
                        HELM_CONFIG_HOME=os.path.join(self.base, "helm/config"),
                        HELM_CACHE_HOME=os.path.join(self.base, "helm/cache"),
                        HELM_DATA_HOME=os.path.join(self.base, "helm/data"),
                        HOME=os.path.join(self.base, "home"))
        os.makedirs(self.env["HOME"], exist_ok=True)
        self.node = NODE
        self.node_ip = NODE_IP
        self.pause_image = PAUSE_IMAGE

    # -- processes
    def start(self, name, argv, env=None):
        f = open(os.path.join(self.logs, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True, preexec_fn=die_with_parent)
        self.procs[name] = p
        return p

    def alive(self, name):
        p = self.procs[name]
        if p.poll() is not None:
            tail = open(os.path.join(self.logs, name + ".log"), errors="replace").read()[-3000:]
            raise CheckFailed("%s exited %s:\n%s" % (name, p.returncode, tail))

    def wait_for(self, what, fn, timeout, procs=()):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for n in procs:
                self.alive(n)
            try:
                r = fn()
                if r:
                    return r
            except Exception as e:  # noqa: BLE001 - reported if it never succeeds
                last = e
            time.sleep(0.5)
        raise CheckFailed("timed out after %ss waiting for %s%s" % (timeout, what,
                                                                   (": %s" % last) if last else ""))

    def kubectl(self, *args, check=True, input=None, timeout=120):
        return run([self.bins["kubectl"]] + list(args), check=check, env=self.env, input=input,
                   timeout=timeout)

    def kjson(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    # -- bring-up
    def namespaces(self):
        for d in PRIVATE_DIRS:
            private = os.path.join(self.base, "host", d.strip("/").replace("/", "-"))
            os.makedirs(private, exist_ok=True)
            run(["mount", "--bind", private, d])
        # A node's / is shared (systemd makes it so): mountPropagation HostToContainer needs
        # it (containerd refuses rslave on a private mount). Shared here means shared within
        # this mount namespace only: its mounts are copies, in peer groups of their own.
        run(["mount", "--make-rshared", "/"])
        run(["ip", "link", "set", "lo", "up"])
        # the node's "NIC": a bridge without ports (this kernel has neither dummy nor veth)
        run(["ip", "link", "add", "sentinel0", "type", "bridge"])
        run(["ip", "addr", "add", NODE_IP + "/24", "dev", "sentinel0"])
        run(["ip", "link", "set", "sentinel0", "up"])
        run(["ip", "route", "add", "default", "dev", "sentinel0"])
        # No kube-proxy: the one Service pods use (the API server's, via the in-cluster
        # config's KUBERNETES_SERVICE_HOST) is translated as kube-proxy would.
        run(["iptables", "-t", "nat", "-A", "OUTPUT", "-d", KUBERNETES_SVC, "-p", "tcp",
             "--dport", "443", "-j", "DNAT", "--to-destination", NODE_IP + ":6443"])

    def certs(self):
        os.makedirs(self.pki)
        d = self.pki

        def ossl(*args):
            run(["openssl"] + list(args))
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
             d + "/ca.crt", "-days", "2", "-subj", "/CN=real-cluster-ca", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")

        def sign(name, subj, ext):
            ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s/%s.key" % (d, name),
                 "-out", "%s/%s.csr" % (d, name), "-subj", subj)
            with open("%s/%s.ext" % (d, name), "w") as f:
                f.write(ext + "\n")
            ossl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.crt", "-CAkey",
                 d + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", "%s/%s.ext" % (d, name),
                 "-out", "%s/%s.crt" % (d, name))
        sign("apiserver", "/CN=kube-apiserver",
             "subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,"
             "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
             "extendedKeyUsage=serverAuth" % (NODE_IP, KUBERNETES_SVC))
        client = "extendedKeyUsage=clientAuth"
        sign("admin", "/O=system:masters/CN=real-cluster-admin", client)
        sign("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", client)
        sign("controller-manager", "/CN=system:kube-controller-manager", client)
        sign("scheduler", "/CN=system:kube-scheduler", client)
        sign("kubelet", "/O=system:nodes/CN=system:node:" + NODE, client)
        ossl("genrsa", "-out", d + "/sa.key", "2048")
        ossl("rsa", "-in", d + "/sa.key", "-pubout", "-out", d + "/sa.pub")
        for name in ("admin", "controller-manager", "scheduler", "kubelet"):
            self.kubeconfig(name)

    def kubeconfig(self, name):
        path = os.path.join(self.base, name + ".kubeconfig")
        with open(path, "w") as f:
            f.write("""apiVersion: v1
kind: Config
clusters:
- name: real
  cluster: {server: "%s", certificate-authority: "%s/ca.crt"}
users:
- name: %s
  user: {client-certificate: "%s/%s.crt", client-key: "%s/%s.key"}
contexts:
- name: real
  context: {cluster: real, user: %s}
current-context: real
""" % (APISERVER, self.pki, name, self.pki, name, self.pki, name, name))
        return path

    def control_plane(self):
        p, b = self.pki, self.base
        # Pod Security: `restricted` by default, as many managed clusters set it, so that
        # the agent runs only in a namespace labelled privileged (manifests/namespace.yaml,
        # the chart README). Exempt: kube-system and the namespace the test leaves
        # unlabelled for its privileged pod (an exemption is how such pods exist on real
        # clusters; the namespace stays unlabelled, which is what the agent judges).
        adm = os.path.join(b, "admission.yaml")
        with open(adm, "w") as f:
            f.write("""apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: PodSecurity
    configuration:
      apiVersion: pod-security.admission.config.k8s.io/v1
      kind: PodSecurityConfiguration
      defaults: {enforce: restricted, enforce-version: latest, audit: restricted, warn: restricted}
      exemptions: {namespaces: [kube-system, %s], usernames: [], runtimeClasses: []}
""" % UNLABELLED_NS)
        etcd_dir = os.path.join(b, "etcd")
        self.start("etcd", ["etcd", "--name", "real", "--data-dir", etcd_dir,
                            "--listen-client-urls", "http://127.0.0.1:2379",
                            "--advertise-client-urls", "http://127.0.0.1:2379",
                            "--listen-peer-urls", "http://127.0.0.1:2380",
                            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                            "--initial-cluster", "real=http://127.0.0.1:2380",
                            "--unsafe-no-fsync"])
        self.start("kube-apiserver", [
            self.bins["kube-apiserver"],
            "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=0.0.0.0", "--secure-port=6443", "--advertise-address=" + NODE_IP,
            "--tls-cert-file=%s/apiserver.crt" % p, "--tls-private-key-file=%s/apiserver.key" % p,
            "--client-ca-file=%s/ca.crt" % p,
            "--kubelet-client-certificate=%s/apiserver-kubelet-client.crt" % p,
            "--kubelet-client-key=%s/apiserver-kubelet-client.key" % p,
            "--kubelet-preferred-address-types=InternalIP",  # no DNS in the namespace
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=%s/sa.pub" % p,
            "--service-account-signing-key-file=%s/sa.key" % p,
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=" + SERVICE_CIDR,
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--admission-control-config-file=" + adm,
            "--allow-privileged=true",
            "--anonymous-auth=false",
            "--profiling=false",
        ])
        self.wait_for("the API server's /readyz", lambda: self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
                      120, procs=("etcd", "kube-apiserver"))
        log("API server ready")
        self.start("kube-controller-manager", [
            self.bins["kube-controller-manager"],
            "--kubeconfig=%s/controller-manager.kubeconfig" % b,
            "--authentication-kubeconfig=%s/controller-manager.kubeconfig" % b,
            "--authorization-kubeconfig=%s/controller-manager.kubeconfig" % b,
            "--bind-address=127.0.0.1", "--leader-elect=false",
            "--service-account-private-key-file=%s/sa.key" % p,
            "--root-ca-file=%s/ca.crt" % p,
            "--use-service-account-credentials=true",
            "--service-cluster-ip-range=" + SERVICE_CIDR,
            "--cluster-signing-cert-file=%s/ca.crt" % p, "--cluster-signing-key-file=%s/ca.key" % p,
            "--controllers=*,-nodeipam",
        ])
        self.start("kube-scheduler", [
            self.bins["kube-scheduler"],
            "--kubeconfig=%s/scheduler.kubeconfig" % b,
            "--authentication-kubeconfig=%s/scheduler.kubeconfig" % b,
            "--authorization-kubeconfig=%s/scheduler.kubeconfig" % b,
            "--bind-address=127.0.0.1", "--leader-elect=false",
        ])

    def wait_healthz(self, name, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def ok():
            with urllib.request.urlopen("https://127.0.0.1:%d/healthz" % port, context=ctx, timeout=3) as r:
                return r.status == 200
        self.wait_for("%s's /healthz" % name, ok, 60, procs=(name,))

    def build_pause_image(self):
        """registry.k8s.io/pause:3.10, built here: a static pause program (as kubernetes
        build/pause/linux/pause.c: wait for signals, reap children) in an OCI archive."""
        d = os.path.join(self.base, "pause")
        os.makedirs(d + "/blobs/sha256")
        src = os.path.join(HERE, "pause.c")
        run(["cc", "-static", "-Os", "-o", d + "/pause", src])
        layer = d + "/layer.tar"
        run(["tar", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", d, "-cf", layer, "pause"])
        import hashlib

        def blob(data):
            h = hashlib.sha256(data).hexdigest()
            with open("%s/blobs/sha256/%s" % (d, h), "wb") as f:
                f.write(data)
            return {"digest": "sha256:" + h, "size": len(data)}
        layer_bytes = open(layer, "rb").read()
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
                             "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]}}).encode()
        cfg = dict(blob(config), mediaType="application/vnd.oci.image.config.v1+json")
        lyr = dict(blob(layer_bytes), mediaType="application/vnd.oci.image.layer.v1.tar")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": cfg, "layers": [lyr]}).encode()
        man = dict(blob(manifest), mediaType="application/vnd.oci.image.manifest.v1+json",
                   annotations={"org.opencontainers.image.ref.name": PAUSE_IMAGE,
                                "io.containerd.image.name": PAUSE_IMAGE})
        with open(d + "/index.json", "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [man]}, f)
        with open(d + "/oci-layout", "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        run(["tar", "-C", d, "-cf", d + ".tar", "oci-layout", "index.json", "blobs"])
        return d + ".tar"

    def ctr(self, *args, **kw):
        return run(["ctr", "--address", self.cd_sock, "-n", "k8s.io"] + list(args), **kw)

    def containerd(self):
        cd = os.path.join(self.base, "containerd")
        os.makedirs(cd)
        self.cd_sock = "/run/containerd/containerd.sock"
        os.makedirs("/etc/cni/net.d", exist_ok=True)
        with open("/etc/cni/net.d/10-sentinel.conflist", "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": "sentinel", "plugins": [
                {"type": "bridge", "bridge": "cni-sentinel", "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                          "dataDir": "/var/lib/cni/networks"}},
                {"type": "portmap", "capabilities": {"portMappings": True}}]}, f)
        with open(cd + "/config.toml", "w") as f:
            f.write("""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "%s"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "%s"
    # this machine refuses a lower oom_score_adj than containerd's own (the kubelet's
    # -998 for the pause container would fail runc's init): cap it, as the truth harness does
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
""" % (self.cd_sock, PAUSE_IMAGE))
        self.start("containerd", ["containerd", "--config", cd + "/config.toml"])
        self.wait_for("containerd's socket", lambda: os.path.exists(self.cd_sock), 60, procs=("containerd",))
        self.wait_for("containerd answering", lambda: self.ctr("version", check=False).returncode == 0, 30,
                      procs=("containerd",))
        self.ctr("images", "import", "--no-unpack", self.build_pause_image())
        if self.o.image_archive:
            self.ctr("images", "import", "--all-platforms", self.o.image_archive)
        names = self.ctr("images", "ls", "-q").stdout.split()
        agent = sorted(n for n in names if n.startswith("localhost/kubelet-sentinel:"))
        if PAUSE_IMAGE not in names or (self.o.image_archive and not agent):
            raise CheckFailed("images in containerd: %s" % names)
        self.agent_image = agent[0] if agent else None
        log("containerd up; images: %s, %s" % (PAUSE_IMAGE, self.agent_image))

    def kubelet(self):
        cfg = "/etc/kubernetes/kubelet-config.yaml"
        with open(cfg, "w") as f:
            f.write("""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "%s/ca.crt"}
authorization:
  mode: Webhook
readOnlyPort: 0
protectKernelDefaults: false
makeIPTablesUtilChains: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: ["none"]
failCgroupV1: false
failSwapOn: false
# the machine's disk may be fuller than a node's defaults allow (DiskPressure would evict)
evictionHard: {"nodefs.available": "1%%", "imagefs.available": "1%%", "memory.available": "100Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
containerRuntimeEndpoint: "unix://%s"
staticPodPath: ""
rotateCertificates: false
serverTLSBootstrap: false
""" % (self.pki, self.cd_sock))
        os.chmod(cfg, 0o600)
        kc = "/etc/kubernetes/kubelet.conf"
        shutil.copyfile(os.path.join(self.base, "kubelet.kubeconfig"), kc)
        os.chmod(kc, 0o600)
        self.kubelet_config = cfg
        self.start("kubelet", [self.bins["kubelet"], "--config=" + cfg, "--kubeconfig=" + kc,
                               "--hostname-override=" + NODE, "--node-ip=" + NODE_IP, "--v=1"])

        def ready():
            n = self.kjson("get", "node", NODE)
            conds = {c["type"]: c["status"] for c in n["status"].get("conditions", [])}
            return conds.get("Ready") == "True"
        self.wait_for("node %s Ready" % NODE, ready, 180, procs=self.ALL)
        log("node %s Ready (kubelet %s)" % (NODE, self.kjson("get", "node", NODE)["status"]["nodeInfo"]["kubeletVersion"]))

    def bringup(self):
        t = time.time()
        self.namespaces()
        self.certs()
        self.control_plane()
        self.wait_healthz("kube-controller-manager", 10257)
        self.wait_healthz("kube-scheduler", 10259)
        self.containerd()
        self.kubelet()
        self.bringup_seconds = time.time() - t
        log("bring-up took %.1fs" % self.bringup_seconds)

    def dump_state(self):
        try:
            out = self.kubectl("get", "all,nodes,events", "-A", "-o", "wide", check=False)
            with open(os.path.join(self.logs, "state.txt"), "w") as f:
                f.write(out.stdout + out.stderr)
        except Exception:  # noqa: BLE001 - best effort, for the logs
            pass


def inner(o):
    c = Cluster(o)
    try:
        c.bringup()
        if o.only_bringup:
            return 0
        import scenarios  # the checks on the running cluster (scenarios.py beside this file)
        return scenarios.run_all(c, log, CheckFailed)
    except CheckFailed as e:
        log("FAIL: %s" % e)
        return 1
    except Exception:  # noqa: BLE001 - a bug of this script is a failed run, with its trace
        import traceback
        log("FAIL: unexpected error:\n%s" % traceback.format_exc())
        return 1
    finally:
        c.dump_state()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-archive", help="OCI archive of the agent's image (required but with --only-bringup)")
    ap.add_argument("--version", default="v1.37.2", help="Kubernetes release (default v1.37.2)")
    ap.add_argument("--logs", help="keep every component's log here")
    ap.add_argument("--only-bringup", action="store_true")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--bins", help=argparse.SUPPRESS)
    o = ap.parse_args()
    if o.inner:
        sys.dont_write_bytecode = True
        sys.path.insert(0, HERE)
        return inner(o)
    return outer(o)


if __name__ == "__main__":
    sys.exit(main())
