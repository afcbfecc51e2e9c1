#!/usr/bin/env python3
"""Runs one kubelet-truth scenario against one kubelet binary and writes its recording.

Meant to run as the first process of a fresh network namespace, started by record.sh as

  unshare --net --mount --propagation private --fork --kill-child python3 run_scenario.py --kubelet BIN --version V \
      --scenario DIR --harness HDIR --work WDIR --out FILE [--log FILE] [--extra-harness-arg A]...

Inside: brings up lo, starts the fake API server on 127.0.0.1:6443, lays the scenario out
under WDIR/root (= @ROOT@), starts the kubelet with the harness arguments followed by the
scenario's arguments, waits until it serves (its listening sockets are stable) or exits or
the timeout passes, probes it, kills its process group, and writes the JSON recording.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APISERVER_PORT = 6443
READER_TOKEN = "kubelet-truth-reader-token"
# Ready = the kubelet logged READY_MARKER (printed once the runtime-dependent modules, i.e. the
# container manager, started: after that a kubelet does not die of its configuration any more)
# MARKER_SECONDS ago, and its set of listening sockets has not changed for STABLE_SECONDS.
# Without the marker (a kubelet that hangs before it), NO_MARKER_SECONDS after the first socket.
READY_MARKER = "Starting Kubelet Plugin Manager"
MARKER_SECONDS = 2.0
STABLE_SECONDS = 1.5
NO_MARKER_SECONDS = 8.0

# The harness's own kubelet arguments, given before the scenario's. @HARNESS@ and @ROOT@ are
# placeholders (see README.md for why each is needed).
# The kubelet's default --root-dir (/var/lib/kubelet, which also holds its self-signed serving
# cert in pki/) and /var/log/pods are per-run directories bind-mounted in the run's own mount
# namespace: some kubelet paths do not follow --root-dir (the device-plugin socket is always
# /var/lib/kubelet/device-plugins/kubelet.sock), and short paths keep unix sockets under the
# 108-byte limit.
PRIVATE_DIRS = ["/var/lib/kubelet", "/var/log/pods"]
HARNESS_ARGS = [
    "--kubeconfig=@HARNESS@/kubeconfig",
    "--container-runtime-endpoint=unix://@HARNESS@/containerd/containerd.sock",
    "--hostname-override=truth-node",
    "--cgroups-per-qos=false",
]  # + from record.sh, by version: --enforce-node-allocatable=none (1.31+) or = (empty, <= 1.30),
#      --fail-cgroupv1=false (where --help lists it)

# TLS 1.2 cipher suites Go's crypto/tls knows (tls.CipherSuites() + tls.InsecureCipherSuites(),
# TLS 1.0-1.2 ones), with their IANA code points.
GO_TLS12_SUITES = [
    ("TLS_RSA_WITH_RC4_128_SHA", 0x0005),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000A),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", 0x002F),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003C),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009C),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009D),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xC007),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC009),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xC00A),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xC011),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xC012),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC013),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xC014),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xC023),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xC027),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC02F),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02B),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xC030),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xC02C),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCA8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCA9),
]
TLS_VERSIONS = [("1.0", 0x0301), ("1.1", 0x0302), ("1.2", 0x0303)]


# ---------------------------------------------------------------- scenario files

def read_lines(path):
    """Non-blank lines that do not start with '#', without their line ending."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.strip() == "" or line.lstrip().startswith("#"):
                continue
            out.append(line)
    return out


def substitute(s, root, harness):
    return s.replace("@ROOT@", root).replace("@HARNESS@", harness)


def lay_out(scenario, root, harness):
    os.makedirs(root)
    for name in sorted(os.listdir(scenario)):
        if name in ("args", "about", "env"):
            continue
        subprocess.run(["cp", "-a", os.path.join(scenario, name), root + "/"], check=True)
    # @ROOT@ / @HARNESS@ inside the copied regular text files (symlinks are left alone).
    for dirpath, dirnames, filenames in os.walk(root):
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                data = f.read()
            if b"\0" in data or (b"@ROOT@" not in data and b"@HARNESS@" not in data):
                continue
            st = os.stat(p)
            data = data.replace(b"@ROOT@", root.encode()).replace(b"@HARNESS@", harness.encode())
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, st.st_mode)


# ---------------------------------------------------------------- sockets of a pid

def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]$", target)
            if m:
                inodes.add(m.group(1))
    except OSError:
        pass
    return inodes


def hex_addr(h, v6):
    raw = bytes.fromhex(h)
    if not v6:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # /proc prints the 16 bytes as four host-endian 32-bit words
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    addr = socket.inet_ntop(socket.AF_INET6, b"".join(words))
    if addr.startswith("::ffff:") and "." in addr:
        return addr
    return addr


def listening(pid):
    inodes = socket_inodes(pid)
    found = set()
    for fam, v6 in (("tcp", False), ("tcp6", True)):
        try:
            with open("/proc/%d/net/%s" % (pid, fam)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != "0A":  # 0A = LISTEN
                continue
            if parts[9] not in inodes:
                continue
            host, port = parts[1].split(":")
            found.add((hex_addr(host, v6), int(port, 16)))
    return sorted(found, key=lambda a: (a[1], a[0]))


# ---------------------------------------------------------------- probes

def plain_http_healthz(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return "error"
    if b"Client sent an HTTP request to an HTTPS server" in data:
        return "tls"
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if m:
        return int(m.group(1))
    if data[:1] == b"\x15":  # a TLS alert record
        return "tls"
    return "error"


def client_hello(version, suites):
    exts = b""

    def ext(t, body):
        return struct.pack("!HH", t, len(body)) + body
    groups = [0x001D, 0x0017, 0x0018, 0x0019]
    exts += ext(0x000A, struct.pack("!H", 2 * len(groups)) + b"".join(struct.pack("!H", g) for g in groups))
    exts += ext(0x000B, b"\x01\x00")
    sigalgs = [0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0201, 0x0203]
    exts += ext(0x000D, struct.pack("!H", 2 * len(sigalgs)) + b"".join(struct.pack("!H", a) for a in sigalgs))
    exts += ext(0xFF01, b"\x00")
    exts += ext(0x0017, b"")
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00"
    body += struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", c) for c in suites)
    body += b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def server_hello(port, version, suites):
    """(negotiated version, cipher) from the ServerHello, or None on an alert / close."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(client_hello(version, suites))
            hdr = recv_exact(s, 5)
            if hdr[0] != 0x16:
                return None
            rec = recv_exact(s, struct.unpack("!H", hdr[3:5])[0])
            if rec[0] != 0x02:
                return None
            ver = struct.unpack("!H", rec[4:6])[0]
            sid_len = rec[38]
            cipher = struct.unpack("!H", rec[39 + sid_len:41 + sid_len])[0]
            return ver, cipher
    except (OSError, EOFError, IndexError, struct.error):
        return None


def tls13(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                return s.version() == "TLSv1.3"
    except (OSError, ssl.SSLError):
        return False


def peer_cert_der(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                return s.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def cert_info(der, harness):
    if der is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        _, pem, _ = openssl("x509", "-inform", "DER", data=der)
        f.write(pem.encode())
        f.flush()

        def name(which):
            _, out, _ = openssl("x509", "-in", f.name, "-noout", "-" + which, "-nameopt", "RFC2253")
            out = out.strip().split("=", 1)[1] if "=" in out else out.strip()
            return out
        subject, issuer = name("subject"), name("issuer")

        def cn(dn):
            m = re.search(r"(?:^|,)CN=((?:[^,\\]|\\.)*)", dn)
            return m.group(1) if m else None
        _, text, _ = openssl("x509", "-in", f.name, "-noout", "-text")
        m = re.search(r"Public Key Algorithm: (\S+)", text)
        algo = m.group(1) if m else None
        m = re.search(r"Public-Key: \((\d+) bit\)", text)
        bits = int(m.group(1)) if m else None
        m = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.*)\n", text)
        sans = sorted(x.strip() for x in m.group(1).split(",")) if m else []
        rc_self, _, _ = openssl("verify", "-CAfile", f.name, "-check_ss_sig", f.name)
        rc_ca, _, _ = openssl("verify", "-CAfile", os.path.join(harness, "ca.crt"), f.name)
    return {
        "subject_cn": cn(subject),
        "issuer_cn": cn(issuer),
        "self_signed": subject == issuer and rc_self == 0,
        "signed_by_harness_ca": rc_ca == 0,
        "key": "%s %s" % (algo, bits) if bits else algo,
        "subject_alt_names": sans,
    }


def tls_probe(port, harness):
    versions = {}
    for name, code in TLS_VERSIONS:
        r = server_hello(port, code, [c for _, c in GO_TLS12_SUITES])
        versions[name] = r is not None and r[0] == code
    versions["1.3"] = tls13(port)
    suites = {}
    for name, code in GO_TLS12_SUITES:
        r = server_hello(port, 0x0303, [code])
        suites[name] = r is not None and r[0] == 0x0303 and r[1] == code
    return {
        "versions": versions,
        "tls12_cipher_suites": suites,
        "certificate": cert_info(peer_cert_der(port), harness),
    }


def https_get(port, path, harness, auth):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    headers = {"Accept": "application/json"}
    if auth == "client-cert":
        ctx.load_cert_chain(os.path.join(harness, "reader.crt"), os.path.join(harness, "reader.key"))
    elif auth == "token":
        headers["Authorization"] = "Bearer " + READER_TOKEN
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, ssl.SSLError, http.client.HTTPException) as e:
        return None, str(e).encode()
    finally:
        conn.close()


# ---------------------------------------------------------------- kubelet log

KLOG_HEADER = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [^\]]*\] ")


def go_unquote(s):
    try:
        return json.loads('"' + s + '"')
    except ValueError:
        return s.replace('\\"', '"').replace("\\\\", "\\")


def klog_value(lines, i, key):
    """The value of key=... in lines[i], following klog's multi-line form (key=<, tab-indented
    lines, then " >")."""
    line = lines[i]
    m = re.search(r' %s="((?:[^"\\]|\\.)*)"' % key, line)
    if m:
        return go_unquote(m.group(1))
    if line.rstrip().endswith(" %s=<" % key):
        out = []
        for l in lines[i + 1:]:
            if l.startswith("\t"):
                out.append(l[1:])
            else:
                break
        return "\n".join(out)
    return None


def final_error(log):
    """The kubelet's final error: the `"command failed" err=...` value, else a Go panic's
    message, else cobra's `Error: ...` line, else the last klog F, then E line."""
    lines = log.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if '"command failed"' in lines[i]:
            v = klog_value(lines, i, "err")
            return v if v is not None else KLOG_HEADER.sub("", lines[i])
    for line in lines:
        if line.startswith("panic: "):
            return line
    for line in reversed(lines):
        if line.startswith("Error: "):
            return line
    for prefix in ("F", "E"):
        for line in reversed(lines):
            if line.startswith(prefix) and KLOG_HEADER.match(line):
                return KLOG_HEADER.sub("", line)
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return None


# ---------------------------------------------------------------- normalisation

def normaliser(root, harness, work):
    pairs = sorted([(root, "@ROOT@"), (harness, "@HARNESS@")], key=lambda p: -len(p[0]))
    real = []
    for p, ph in pairs:
        rp = os.path.realpath(p)
        if rp != p:
            real.append((rp, ph))

    def norm(v):
        if isinstance(v, str):
            for p, ph in pairs + real:
                v = v.replace(p, ph)
            # serving-certificate names carry the creation time: "host@1701234567"
            v = re.sub(r"@1[0-9]{9}\b", "@<unix-time>", v)
            return v
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {norm(k): norm(x) for k, x in v.items()}
        return v
    return norm


# ---------------------------------------------------------------- main

def die_with_parent():
    """PR_SET_PDEATHSIG(SIGKILL): the child dies when this runner dies."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def note_pid(o, name, pid):
    if o.pidfile_dir:
        with open(os.path.join(o.pidfile_dir, "%s.%s" % (os.path.basename(o.work), name)), "w") as f:
            f.write("%d\n" % pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubelet", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--log")
    ap.add_argument("--timeout", type=float, default=40.0)
    ap.add_argument("--extra-harness-arg", action="append", default=[])
    ap.add_argument("--outer-ns", help="the caller's mount and net namespaces (readlink "
                    "/proc/self/ns/{mnt,net}); refused unless ours differ")
    ap.add_argument("--pidfile-dir", help="write the kubelet's and fake API server's pids here")
    o = ap.parse_args()

    scenario = os.path.abspath(o.scenario)
    name = os.path.basename(scenario.rstrip("/"))
    harness = os.path.abspath(o.harness)
    work = os.path.abspath(o.work)
    root = os.path.join(work, "root")
    os.makedirs(work, exist_ok=True)
    lay_out(scenario, root, harness)

    args = read_lines(os.path.join(scenario, "args"))
    env_lines = read_lines(os.path.join(scenario, "env"))
    harness_args = HARNESS_ARGS + o.extra_harness_arg
    argv = [o.kubelet] + [substitute(a, root, harness) for a in harness_args + args]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    for line in env_lines:
        k, _, v = line.partition("=")
        env[k] = substitute(v, root, harness)

    inner = "%s %s" % (os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/net"))
    if not o.outer_ns or o.outer_ns.split()[0] in inner or o.outer_ns.split()[1] in inner:
        sys.exit("run_scenario.py must run in its own mount and network namespaces (see record.sh)")
    for d in PRIVATE_DIRS:
        private = os.path.join(work, "private", d.strip("/").replace("/", "-"))
        os.makedirs(private, exist_ok=True)
        os.makedirs(d, exist_ok=True)
        subprocess.run(["mount", "--bind", private, d], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    api_log = open(os.path.join(work, "apiserver.log"), "w")
    ready = os.path.join(work, "apiserver.ready")
    api = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "fake_apiserver.py"), str(APISERVER_PORT),
         os.path.join(harness, "apiserver.crt"), os.path.join(harness, "apiserver.key"),
         os.path.join(harness, "ca.crt"), READER_TOKEN, ready],
        stdout=api_log, stderr=api_log, start_new_session=True, preexec_fn=die_with_parent)
    note_pid(o, "apiserver", api.pid)
    deadline = time.time() + 10
    while not os.path.exists(ready) and time.time() < deadline and api.poll() is None:
        time.sleep(0.05)
    if not os.path.exists(ready):
        sys.exit("fake API server did not start; see " + api_log.name)

    klog_path = os.path.join(work, "kubelet.log")
    klog = open(klog_path, "w")
    kubelet = subprocess.Popen(argv, env=env, cwd=root, stdout=klog, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=die_with_parent)
    note_pid(o, "kubelet", kubelet.pid)
    t0 = last_change = time.time()
    first_seen = marker_seen = None
    ports = []
    ready = False
    with open(klog_path, errors="replace") as logf:
        while time.time() - t0 < o.timeout:
            if kubelet.poll() is not None:
                break
            now_ports = listening(kubelet.pid)
            now = time.time()
            if marker_seen is None and READY_MARKER in logf.read():
                marker_seen = now
            if now_ports != ports:
                ports, last_change = now_ports, now
            if ports and first_seen is None:
                first_seen = now
            stable = now - last_change >= STABLE_SECONDS
            if marker_seen is not None and now - marker_seen >= MARKER_SECONDS and stable:
                ready = True
                break
            if marker_seen is None and first_seen is not None and now - first_seen >= NO_MARKER_SECONDS and stable:
                ready = True
                break
            time.sleep(0.2)
    exit_code = kubelet.poll()
    running = exit_code is None
    if running:
        ports = listening(kubelet.pid)

    rec = {
        "version": o.version,
        "scenario": name,
        "args": args,
        "harness_args": harness_args,
        "env": env_lines,
        "started": False,
        "exit_code": exit_code,
        "exit_error": None,
        "listening": [{"address": a, "port": p} for a, p in ports],
        "http": {},
        "tls": {},
        "anonymous": {},
        "configz": None,
        "configz_auth": {},
        "configz_error": None,
    }
    if running and ready:
        for port in sorted({p for _, p in ports}):
            rec["http"][str(port)] = plain_http_healthz(port)
        tls_ports = [p for p, v in sorted(rec["http"].items(), key=lambda kv: int(kv[0])) if v == "tls"]
        errors = []
        for port in tls_ports:
            rec["tls"][port] = tls_probe(int(port), harness)
            status, _ = https_get(int(port), "/pods", harness, None)
            rec["anonymous"][port] = status
            access = rec["configz_auth"].setdefault(port, {})
            for auth in ("none", "token", "client-cert"):
                status, body = https_get(int(port), "/configz", harness, auth)
                access[auth] = status
                if status == 200:
                    if rec["configz"] is None:
                        try:
                            rec["configz"] = json.loads(body)["kubeletconfig"]
                        except (ValueError, KeyError) as e:
                            errors.append("%s %s: 200 with a bad body: %s" % (port, auth, e))
                else:
                    first = body.decode(errors="replace").strip().splitlines()[:1]
                    msg = "HTTP %s: %s" % (status, first[0] if first else "")
                    if msg not in errors:
                        errors.append(msg)
        if rec["configz"] is None:
            rec["configz_error"] = "; ".join(errors) if errors else "no TLS port"
        # still there after the probes?
        running = kubelet.poll() is None
        rec["started"] = running
    if not running:
        if kubelet.poll() is None:
            kubelet.kill()
        try:
            kubelet.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        rec["exit_code"] = kubelet.returncode
        # what it listened on before it died depends on timing: a dead kubelet listens on nothing
        rec["listening"], rec["http"], rec["tls"], rec["anonymous"] = [], {}, {}, {}
        rec["configz"], rec["configz_auth"], rec["configz_error"] = None, {}, None
        klog.flush()
        with open(klog_path, errors="replace") as f:
            rec["exit_error"] = final_error(f.read())
    elif not ready:
        rec["exit_error"] = "still running but not ready after %ds" % o.timeout
        rec["started"] = False
    for proc in (kubelet, api):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    if o.pidfile_dir:
        for n in ("kubelet", "apiserver"):
            try:
                os.unlink(os.path.join(o.pidfile_dir, "%s.%s" % (os.path.basename(o.work), n)))
            except OSError:
                pass
    if running:
        rec["exit_code"] = None

    norm = normaliser(root, harness, work)
    rec = norm(rec)
    tmp = o.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(rec, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, o.out)
    if o.log:
        shutil.copyfile(klog_path, o.log)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
